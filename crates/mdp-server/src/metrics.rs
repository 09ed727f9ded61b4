//! `/metrics`: the Prometheus text exposition (format 0.0.4), computed at scrape time from the
//! metadata schema, so it is right whichever process ran what.
//!
//! The values are aggregates the warehouse computes (counts, sums, histogram buckets by
//! `CASE WHEN`), not in-process instruments, so a small encoder writes them instead of an
//! instrumentation library whose counters live in memory.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDateTime;

use crate::data::{DataError, MetricsData, Reader, DURATION_BUCKETS};
use crate::AppState;

/// One metric family being written.
pub struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

/// Escape a label value (backslash, double quote, newline).
pub fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        (if v > 0.0 { "+Inf" } else { "-Inf" }).to_string()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Start a family: `# HELP` and `# TYPE` lines.
pub fn family<'a>(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Family<'a> {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\").replace('\n', "\\n"));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    Family { out, name }
}

impl Family<'_> {
    /// A sample of the family itself.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.sample_suffix("", labels, value);
    }

    /// A sample with a suffix (`_bucket`, `_sum`, `_count`).
    pub fn sample_suffix(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            let rendered: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape_label(v))).collect();
            let _ = write!(self.out, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }
}

fn epoch(ts: NaiveDateTime) -> f64 {
    ts.and_utc().timestamp_millis() as f64 / 1000.0
}

/// Render every family from the metadata aggregates. `readable` is false while a run holds the
/// warehouse (DuckDB): then only the server's own families are written.
pub fn render(data: Option<&MetricsData>, now: NaiveDateTime, actions_running: usize) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "mdp_warehouse_readable",
        "gauge",
        "1 when the server could read the warehouse for this scrape, 0 while a run holds it",
    )
    .sample(&[], if data.is_some() { 1.0 } else { 0.0 });
    family(
        &mut out,
        "mdp_server_actions_running",
        "gauge",
        "Actions (pipeline, backfill, retry) this server has running",
    )
    .sample(&[], actions_running as f64);
    let Some(data) = data else { return out };

    let mut f = family(&mut out, "mdp_runs", "gauge", "Runs in the run history by status");
    for r in &data.runs_by_status {
        f.sample(&[("status", &r.status)], r.runs as f64);
    }
    let mut f =
        family(&mut out, "mdp_task_instances", "gauge", "Task instances of orchestrated runs by kind and final state");
    for t in &data.tasks_by_kind_state {
        f.sample(&[("kind", &t.kind), ("state", &t.state)], t.tasks as f64);
    }
    let mut f =
        family(&mut out, "mdp_task_duration_seconds", "histogram", "Durations of finished task instances by kind");
    for d in &data.durations {
        let kind = d.kind.as_str();
        for (bound, cumulative) in DURATION_BUCKETS.iter().zip(&d.at_most) {
            f.sample_suffix("_bucket", &[("kind", kind), ("le", &format_value(*bound))], *cumulative as f64);
        }
        f.sample_suffix("_bucket", &[("kind", kind), ("le", "+Inf")], d.tasks as f64);
        f.sample_suffix("_sum", &[("kind", kind)], d.total_seconds);
        f.sample_suffix("_count", &[("kind", kind)], d.tasks as f64);
    }
    let mut f =
        family(&mut out, "mdp_ingested_rows_total", "counter", "Rows loaded by successful ingest tasks, by source");
    for s in &data.ingested_rows {
        f.sample(&[("source", &s.source)], s.rows as f64);
    }
    let mut f = family(
        &mut out,
        "mdp_stream_last_window_rows",
        "gauge",
        "Rows of the last loaded window of a stream, summed over its accounts",
    );
    for s in &data.freshness {
        f.sample(&[("source", &s.source), ("stream", &s.stream)], s.last_window_rows as f64);
    }
    let mut f = family(&mut out, "mdp_stream_freshness_lag_seconds", "gauge", "Seconds since a stream was last loaded");
    for s in &data.freshness {
        if let Some(at) = s.last_loaded_at {
            f.sample(&[("source", &s.source), ("stream", &s.stream)], (epoch(now) - epoch(at)).max(0.0));
        }
    }
    let mut f = family(
        &mut out,
        "mdp_stream_days_behind",
        "gauge",
        "Days between today and the oldest account cursor of a stream",
    );
    for s in &data.freshness {
        if let Some(days) = s.days_behind {
            f.sample(&[("source", &s.source), ("stream", &s.stream)], days as f64);
        }
    }
    let mut by_status: Vec<(String, f64)> = Vec::new();
    for c in &data.latest_checks {
        match by_status.iter_mut().find(|(s, _)| *s == c.status) {
            Some(entry) => entry.1 += 1.0,
            None => by_status.push((c.status.clone(), 1.0)),
        }
    }
    by_status.sort_by(|a, b| a.0.cmp(&b.0));
    let mut f = family(&mut out, "mdp_checks", "gauge", "Checks by the status of their latest result");
    for (status, count) in &by_status {
        f.sample(&[("status", status)], *count);
    }
    let mut f = family(&mut out, "mdp_check_status", "gauge", "1 for the status of each check's latest result");
    for c in &data.latest_checks {
        let kind = c.check_kind.as_deref().unwrap_or("");
        f.sample(&[("check", &c.check_name), ("kind", kind), ("status", &c.status)], 1.0);
    }
    if let Some(at) = data.last_success {
        family(
            &mut out,
            "mdp_last_successful_run_timestamp_seconds",
            "gauge",
            "When the last successful run finished (Unix time)",
        )
        .sample(&[], epoch(at));
    }
    out
}

/// `GET /metrics`.
pub async fn handler(State(state): State<Arc<AppState>>) -> Response {
    let running = state.actions.as_ref().map_or(0, |a| usize::from(a.running().is_some()));
    let data = match Reader::open(&state.config.warehouse).await {
        Ok(reader) => reader.metrics(state.today()).await,
        Err(e) => Err(e),
    };
    let body = match &data {
        Ok(d) => render(Some(d), chrono::Utc::now().naive_utc(), running),
        Err(DataError::Busy(_)) | Err(DataError::Empty(_)) => render(None, chrono::Utc::now().naive_utc(), running),
        Err(DataError::Failed(message)) => {
            tracing::warn!("metrics: {message}");
            render(None, chrono::Utc::now().naive_utc(), running)
        }
    };
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], body)
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CheckRow, Freshness, SourceRows};
    use mdp_warehouse::meta::{RunCount, TaskCount, TaskDurations};

    fn data() -> MetricsData {
        let ts = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        MetricsData {
            runs_by_status: vec![
                RunCount { status: "failed".into(), runs: 1 },
                RunCount { status: "success".into(), runs: 3 },
            ],
            tasks_by_kind_state: vec![TaskCount { kind: "ingest".into(), state: "success".into(), tasks: 8 }],
            durations: vec![TaskDurations {
                kind: "model".into(),
                tasks: 4,
                total_seconds: 2.5,
                at_most: vec![1, 3, 4, 4, 4, 4, 4, 4, 4],
            }],
            ingested_rows: vec![SourceRows { source: "google_ads".into(), rows: 1234 }],
            freshness: vec![Freshness {
                source: "google_ads".into(),
                stream: "campaign_daily".into(),
                accounts: 2,
                cursor_date: None,
                last_loaded_at: Some(ts("2026-06-30 10:00:00")),
                last_window_rows: 40,
                days_behind: Some(2),
            }],
            latest_checks: vec![CheckRow {
                run_id: "r".into(),
                check_name: "spend \"anomaly\"\nx\\y".into(),
                check_kind: Some("anomaly".into()),
                relation: None,
                status: "warn".into(),
                observed: None,
                expected: None,
                failing_rows: None,
                message: None,
                sample_query: None,
                executed_at: "2026-06-30 10:00:00".into(),
            }],
            last_success: Some(ts("2026-06-30 09:00:00")),
        }
    }

    #[test]
    fn the_exposition_has_every_family_with_help_type_and_valid_samples() {
        let now = NaiveDateTime::parse_from_str("2026-06-30 10:01:40", "%Y-%m-%d %H:%M:%S").unwrap();
        let text = render(Some(&data()), now, 0);
        for family in [
            "mdp_runs",
            "mdp_task_instances",
            "mdp_task_duration_seconds",
            "mdp_ingested_rows_total",
            "mdp_stream_freshness_lag_seconds",
            "mdp_stream_days_behind",
            "mdp_checks",
            "mdp_check_status",
            "mdp_last_successful_run_timestamp_seconds",
        ] {
            assert!(text.contains(&format!("# TYPE {family} ")), "{family} missing:\n{text}");
            assert!(text.contains(&format!("# HELP {family} ")), "{family} has no help");
        }
        assert!(text.contains("mdp_runs{status=\"success\"} 3\n"), "{text}");
        assert!(
            text.contains("mdp_stream_freshness_lag_seconds{source=\"google_ads\",stream=\"campaign_daily\"} 100\n")
        );
        assert!(text.contains("mdp_task_duration_seconds_bucket{kind=\"model\",le=\"0.5\"} 3\n"));
        assert!(text.contains("mdp_task_duration_seconds_bucket{kind=\"model\",le=\"+Inf\"} 4\n"));
        assert!(text.contains("mdp_task_duration_seconds_count{kind=\"model\"} 4\n"));
        assert!(text.contains("mdp_last_successful_run_timestamp_seconds 1782810000\n"), "{text}");
        // Label values are escaped: quotes, newlines and backslashes cannot break a line.
        assert!(text.contains(r#"check="spend \"anomaly\"\nx\\y""#), "{text}");
        // Every non-comment line is `name{labels} value` with a number as value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "bad value in {line}");
            let name_end = series.find('{').unwrap_or(series.len());
            assert!(series[..name_end].chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name in {line}");
            assert!(!series.contains('\n'));
        }
    }

    #[test]
    fn while_a_run_writes_only_the_servers_families_are_written() {
        let now = NaiveDateTime::parse_from_str("2026-06-30 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let text = render(None, now, 1);
        assert!(text.contains("mdp_warehouse_readable 0\n") && text.contains("mdp_server_actions_running 1\n"));
        assert!(!text.contains("mdp_runs"));
    }
}
