//! The server-rendered pages and the form posts of their buttons.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Duration, NaiveDate};
use maud::{html, Markup, PreEscaped};
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use mdp_core::{RunStatus, TaskId, TaskState};
use mdp_monitor::checks::CheckStatus;

use crate::actions::{Action, ActionRequest, ActionState};
use crate::auth::Offered;
use crate::data::{CampaignSort, CheckFilter, CheckRow, DataResult, Freshness, PlatformDay, Reader, Run};
use crate::html::{
    badge, data_error, incident_status_badge, json_script, layout, money, opt, page, ratio, stored_badge,
};
use crate::AppState;

async fn reader(state: &AppState) -> DataResult<Reader> {
    Reader::open(&state.config.warehouse).await
}

/// The form that starts a pipeline run (shown on the overview and the actions page).
fn pipeline_form(state: &AppState) -> Markup {
    html! {
        form.inline method="post" action="/actions/pipeline" {
            (credentials(state))
            button id="run-pipeline" type="submit" disabled[!state.policy.actions_enabled() || state.actions.is_none()] { "Run pipeline" }
        }
    }
}

/// Hidden CSRF field, and a token field when the server needs one.
fn credentials(state: &AppState) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(state.policy.csrf());
        @if state.policy.token_required() {
            input.token type="password" name="token" placeholder="server token" autocomplete="current-password" required;
        }
    }
}

fn running_banner(state: &AppState) -> Markup {
    match state.actions.as_ref().and_then(|a| a.running()) {
        Some(action) => html! {
            div.notice.running {
                "Running: " code { (action.command) } " — " a href={ "/actions/" (action.id) } { "follow it" }
            }
        },
        None => html! {},
    }
}

fn runs_table(runs: &[Run]) -> Markup {
    html! {
        table.runs {
            thead { tr { th { "Run" } th { "Command" } th { "Status" } th { "Started (UTC)" } th { "Finished (UTC)" } th { "Error" } } }
            tbody {
                @for run in runs {
                    tr data-run-id=(run.run_id) data-status=(run.status) {
                        td { a href={ "/runs/" (run.run_id) } { code { (run.run_id) } } }
                        td { (run.command) }
                        td { (stored_badge::<RunStatus>(&run.status)) }
                        td { (to_seconds(&run.started_at)) }
                        td { (opt(run.finished_at.as_ref().map(to_seconds))) }
                        td.error { (opt(run.error.as_deref().map(|e| first_line(e, 160)))) }
                    }
                }
            }
        }
        @if runs.is_empty() { p.muted { "No runs yet." } }
    }
}

/// A timestamp as text, to the second (`2026-06-30 10:00:00.123456` → `2026-06-30 10:00:00`).
fn seconds(ts: &str) -> &str {
    ts.get(..19).unwrap_or(ts)
}

fn to_seconds(ts: &chrono::NaiveDateTime) -> String {
    ts.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

fn freshness_table(rows: &[Freshness]) -> Markup {
    html! {
        table.freshness {
            thead { tr { th { "Source" } th { "Stream" } th { "Accounts" } th { "Complete up to" } th { "Days behind" } th { "Last loaded (UTC)" } th { "Rows, last window" } } }
            tbody {
                @for f in rows {
                    tr {
                        td { (f.source) } td { (f.stream) } td.num { (f.accounts) }
                        td { (opt(f.cursor_date)) }
                        td.num.stale[f.days_behind.is_some_and(|d| d > 2)] { (opt(f.days_behind)) }
                        td { (opt(f.last_loaded_at.map(|t| t.format("%Y-%m-%d %H:%M:%S")))) }
                        td.num { (f.last_window_rows) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.muted { "Nothing loaded yet." } }
    }
}

fn checks_table(rows: &[CheckRow]) -> Markup {
    html! {
        table.checks {
            thead { tr { th { "When (UTC)" } th { "Check" } th { "Kind" } th { "Relation" } th { "Status" } th { "Observed" } th { "Expected" } th { "Failing rows" } th { "Message" } } }
            tbody {
                @for c in rows {
                    tr data-status=(c.status) {
                        td { (seconds(&c.executed_at)) }
                        td { (c.check_name) }
                        td { (opt(c.check_kind.as_deref())) }
                        td { (opt(c.relation.as_deref())) }
                        td { (stored_badge::<CheckStatus>(&c.status)) }
                        td { (opt(c.observed.as_deref())) }
                        td { (opt(c.expected.as_deref())) }
                        td.num { (opt(c.failing_rows)) }
                        td {
                            (opt(c.message.as_deref()))
                            @if let Some(sql) = &c.sample_query {
                                details { summary { "Query to inspect the rows" } pre { (sql) } }
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p.muted { "No check results." } }
    }
}

/// `GET /`: last runs, checks needing attention, freshness per source.
pub async fn overview(State(state): State<Arc<AppState>>) -> Response {
    let result = async {
        let r = reader(&state).await?;
        let runs = r.recent_runs(10).await?;
        let checks = r.latest_checks().await?;
        let freshness = r.freshness(state.today()).await?;
        let incidents = r.open_incidents().await?;
        Ok::<_, crate::data::DataError>((runs, checks, freshness, incidents))
    }
    .await;
    let (runs, checks, freshness, incidents) = match result {
        Ok(v) => v,
        Err(e) => return data_error("Overview", "Overview", &e),
    };
    let attention: Vec<CheckRow> = checks.iter().filter(|c| crate::data::status_rank(&c.status) < 2).cloned().collect();
    let passing = checks.len() - attention.len();
    let last = runs.first();
    page(
        StatusCode::OK,
        layout(
            "Overview",
            "Overview",
            None,
            html! {
                (running_banner(&state))
                section.summary {
                    div.card {
                        h3 { "Last run" }
                        @if let Some(run) = last {
                            p { (stored_badge::<RunStatus>(&run.status)) " " a href={ "/runs/" (run.run_id) } { (run.command) } }
                            p.muted { (to_seconds(&run.started_at)) " UTC" }
                        } @else { p.muted { "none yet" } }
                    }
                    div.card {
                        h3 { "Checks" }
                        p { span.big.bad { (attention.len()) } " need attention, " span.big.ok { (passing) } " pass" }
                        p { a href="/checks" { "History" } }
                    }
                    div.card { h3 { "Run now" } (pipeline_form(&state)) }
                }
                @if !incidents.is_empty() {
                    h2 { "Open incidents" }
                    p.muted { "Announced once by the notifiers of mdp.yml's " code { "alerts:" } "; each closes, with one more notification, when its run or check is green again." }
                    table.incidents {
                        thead { tr { th { "Since (UTC)" } th { "What" } th { "Latest" } th { "Opened by" } th { "Message" } } }
                        tbody {
                            @for i in &incidents {
                                tr data-incident=(i.incident_key) {
                                    td { (i.opened_at.format("%Y-%m-%d %H:%M:%S")) }
                                    td { code { (i.incident_key) } }
                                    td { (incident_status_badge(i.last_status.as_deref().unwrap_or("open"))) }
                                    td { @if let Some(run) = &i.opened_run_id { a href={ "/runs/" (run) } { code { (run.get(..8).unwrap_or(run)) } } } }
                                    td { (i.message.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                h2 { "Checks needing attention" }
                @if attention.is_empty() { p.muted { "Every check's latest result passes." } }
                @else { (checks_table(&attention)) }
                h2 { "Freshness" }
                (freshness_table(&freshness))
                h2 { "Last runs" }
                (runs_table(&runs))
                p { a href="/runs" { "All runs" } }
            },
        ),
    )
}

/// `GET /runs`.
pub async fn runs(State(state): State<Arc<AppState>>) -> Response {
    let runs = match async { reader(&state).await?.recent_runs(200).await }.await {
        Ok(r) => r,
        Err(e) => return data_error("Runs", "Runs", &e),
    };
    let any_running = runs.iter().any(|r| r.status.parse::<RunStatus>() == Ok(RunStatus::Running));
    page(
        StatusCode::OK,
        layout("Runs", "Runs", any_running.then_some(5), html! { (running_banner(&state)) (runs_table(&runs)) }),
    )
}

/// `GET /runs/{id}`: the run and its tasks with state, attempts, timings, rows, error and log.
pub async fn run_detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let found = match async { reader(&state).await?.run(&id).await }.await {
        Ok(f) => f,
        Err(e) => return data_error("Run", "Runs", &e),
    };
    let Some((run, tasks)) = found else {
        return page(
            StatusCode::NOT_FOUND,
            layout("Run not found", "Runs", None, html! { p { "No run " code { (id) } " in the run history." } }),
        );
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &tasks {
        *counts.entry(t.state.as_str()).or_default() += 1;
    }
    let can_retry = state.policy.actions_enabled() && state.actions.is_some();
    page(
        StatusCode::OK,
        layout(
            &format!("Run {}", run.run_id),
            "Runs",
            (run.status.parse::<RunStatus>() == Ok(RunStatus::Running)).then_some(3),
            html! {
                p { (stored_badge::<RunStatus>(&run.status)) " " code { (run.command) } " started " (to_seconds(&run.started_at)) " UTC"
                    @if let Some(f) = &run.finished_at { ", finished " (to_seconds(f)) } }
                @if let Some(error) = &run.error { pre.error { (error) } }
                p { @for (s, n) in &counts { (stored_badge::<TaskState>(s)) " " (n) "  " } }
                table.tasks {
                    thead { tr { th { "Task" } th { "Kind" } th { "State" } th { "Attempts" } th { "Started (UTC)" } th { "Seconds" } th { "Rows" } th { "Error / log" } } }
                    tbody {
                        @for t in &tasks {
                            tr data-task-id=(t.task_id) data-state=(t.state) {
                                td { code { (t.task_id) } }
                                td { (t.kind) }
                                td { (stored_badge::<TaskState>(&t.state)) }
                                td.num { (t.attempts) }
                                td { (opt(t.started_at.map(|s| s.format("%H:%M:%S%.3f")))) }
                                td.num { (opt(t.duration_seconds.map(|d| format!("{d:.2}")))) }
                                td.num { (opt(t.rows)) }
                                td {
                                    @if let Some(e) = &t.error { pre.error { (e) } }
                                    @if let Some(log) = t.log.as_deref().filter(|l| !l.is_empty()) {
                                        details { summary { "log" } pre { (log) } }
                                    }
                                    @if can_retry && t.state.parse::<TaskState>() == Ok(TaskState::Failed) {
                                        form.inline method="post" action="/actions/retry" {
                                            (credentials(&state))
                                            input type="hidden" name="run_id" value=(run.run_id);
                                            input type="hidden" name="task_id" value=(t.task_id);
                                            button type="submit" { "Re-run this task" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if tasks.is_empty() { p.muted { "This run recorded no tasks (not an orchestrated run)." } }
            },
        ),
    )
}

/// `GET /lineage`: the graph from sources to marts, each node linking to its docs page.
pub async fn lineage(State(state): State<Arc<AppState>>) -> Response {
    let catalog = &state.config.catalog;
    page(
        StatusCode::OK,
        layout(
            "Lineage",
            "Lineage",
            None,
            html! {
                p.muted { "From the sources and seeds through staging and intermediate models to the marts. Click a node for its docs, columns, SQL and tests." }
                h2 { "Marts" }
                ul.marts {
                    @for m in catalog.marts() {
                        li { a href=(m.docs) data-id=(m.unique_id) { (m.name) } @if let Some(r) = &m.relation { " " code.muted { (r) } } }
                    }
                }
                div.lineage-graph { (PreEscaped(&catalog.lineage_svg)) }
            },
        ),
    )
}

/// `GET /checks?status=&kind=`: the history of check results.
pub async fn checks(State(state): State<Arc<AppState>>, Query(filter): Query<CheckFilter>) -> Response {
    let result = async {
        let r = reader(&state).await?;
        Ok::<_, crate::data::DataError>((r.check_history(&filter).await?, r.check_facets().await?))
    }
    .await;
    let (rows, (kinds, statuses)) = match result {
        Ok(v) => v,
        Err(e) => return data_error("Checks", "Checks", &e),
    };
    let selected = |current: &Option<String>, value: &str| current.as_deref() == Some(value);
    page(
        StatusCode::OK,
        layout(
            "Checks",
            "Checks",
            None,
            html! {
                form.filters method="get" action="/checks" {
                    label { "Status " select name="status" {
                        option value="" { "any" }
                        @for s in &statuses { option value=(s) selected[selected(&filter.status, s)] { (s) } }
                    } }
                    label { "Kind " select name="kind" {
                        option value="" { "any" }
                        @for k in &kinds { option value=(k) selected[selected(&filter.kind, k)] { (k) } }
                    } }
                    button type="submit" { "Filter" }
                }
                (checks_table(&rows))
            },
        ),
    )
}

/// Query of the KPI dashboard.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KpiQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub sort: Option<String>,
    pub dir: Option<String>,
}

/// The resolved range and sort of a KPI request.
pub struct KpiRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub sort: CampaignSort,
    pub descending: Option<bool>,
}

/// Default range: the 30 days ending at the latest day in the marts (or today).
pub async fn kpi_range(state: &AppState, r: &Reader, q: &KpiQuery) -> DataResult<KpiRange> {
    let to = match q.to {
        Some(to) => to,
        None => r.latest_kpi_date(state.config.catalog.platform_daily.as_ref()).await?.unwrap_or_else(|| state.today()),
    };
    let from = q.from.unwrap_or(to - Duration::days(29));
    let (from, to) = if from > to { (to, from) } else { (from, to) };
    let descending = match q.dir.as_deref() {
        Some("asc") => Some(false),
        Some("desc") => Some(true),
        _ => None,
    };
    Ok(KpiRange { from, to, sort: CampaignSort::parse(q.sort.as_deref()), descending })
}

/// What the KPI dashboard shows, for the page and `/api/kpis` alike.
pub struct Kpis {
    pub range: KpiRange,
    pub days: Vec<PlatformDay>,
    pub totals: Vec<crate::data::Totals>,
    /// The first 500 campaigns in the requested order.
    pub campaigns: Vec<crate::data::CampaignRow>,
}

/// Read the dashboard's data for a request: its range, the platform series, totals and campaigns.
pub async fn kpi_data(state: &AppState, r: &Reader, q: &KpiQuery) -> DataResult<Kpis> {
    let catalog = &state.config.catalog;
    let range = kpi_range(state, r, q).await?;
    let days = r.platform_days(catalog.platform_daily.as_ref(), range.from, range.to).await?;
    let totals = r.totals(catalog.platform_daily.as_ref(), range.from, range.to).await?;
    let campaigns =
        r.campaigns(catalog.campaign_daily.as_ref(), range.from, range.to, range.sort, range.descending, 500).await?;
    Ok(Kpis { range, days, totals, campaigns })
}

/// The chart data: one series per platform, aligned on the dates.
pub fn chart_data(days: &[PlatformDay]) -> serde_json::Value {
    let mut dates: Vec<&str> = days.iter().map(|d| d.date.as_str()).collect();
    dates.dedup();
    let mut platforms: Vec<&str> = days.iter().map(|d| d.platform.as_str()).collect();
    platforms.sort();
    platforms.dedup();
    let index: BTreeMap<&str, usize> = dates.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut series = serde_json::Map::new();
    for metric in ["spend", "conversions", "roas"] {
        let mut by_platform = serde_json::Map::new();
        for p in &platforms {
            let mut values = vec![serde_json::Value::Null; dates.len()];
            for d in days.iter().filter(|d| d.platform == *p) {
                // The chart library plots floats: exact amounts become floats here, at the edge, only.
                let v = match metric {
                    "spend" => d.spend.to_f64(),
                    "conversions" => d.conversions.to_f64(),
                    _ => d.roas,
                };
                values[index[d.date.as_str()]] = v.map_or(serde_json::Value::Null, |v| serde_json::json!(v));
            }
            by_platform.insert(p.to_string(), serde_json::Value::Array(values));
        }
        series.insert(metric.to_string(), serde_json::Value::Object(by_platform));
    }
    let currencies: Vec<&str> = {
        let mut c: Vec<&str> = days.iter().map(|d| d.reporting_currency.as_str()).collect();
        c.sort();
        c.dedup();
        c
    };
    serde_json::json!({ "dates": dates, "platforms": platforms, "series": series, "currency": currencies.join("/") })
}

/// `GET /kpis`: spend, conversions and ROAS by platform over time, totals, campaigns.
pub async fn kpis(State(state): State<Arc<AppState>>, Query(q): Query<KpiQuery>) -> Response {
    let Kpis { range, days, totals, campaigns } =
        match async { kpi_data(&state, &reader(&state).await?, &q).await }.await {
            Ok(v) => v,
            Err(e) => return data_error("KPIs", "KPIs", &e),
        };
    let data = chart_data(&days);
    let sort_link = |key: &str, label: &str| {
        let current = range.sort.as_str() == key;
        let next_dir = match (current, range.descending) {
            (true, Some(true)) => "asc",
            (true, Some(false)) => "desc",
            (true, None) => {
                if key == "cpa" {
                    "desc"
                } else {
                    "asc"
                }
            }
            (false, _) => {
                if key == "cpa" {
                    "asc"
                } else {
                    "desc"
                }
            }
        };
        html! {
            a.sort.current[current] href={ "/kpis?from=" (range.from) "&to=" (range.to) "&sort=" (key) "&dir=" (next_dir) } { (label) }
        }
    };
    page(
        StatusCode::OK,
        layout(
            "KPIs",
            "KPIs",
            None,
            html! {
                form.filters method="get" action="/kpis" {
                    label { "From " input type="date" name="from" value=(range.from); }
                    label { "To " input type="date" name="to" value=(range.to); }
                    input type="hidden" name="sort" value=(range.sort.as_str());
                    button type="submit" { "Show" }
                }
                section.summary {
                    @for t in &totals {
                        div.card.total data-currency=(t.reporting_currency) {
                            h3 { "Spend (" (t.reporting_currency) ")" } p.big { (money(&t.spend)) }
                            p { "Conversions " (money(&t.conversions)) } p { "Value " (money(&t.conversion_value)) }
                            p { "CPA " (ratio(t.cpa)) " · ROAS " (ratio(t.roas)) }
                        }
                    }
                    @if totals.is_empty() { p.muted { "No data between " (range.from) " and " (range.to) "." } }
                }
                (json_script("kpi-data", &data))
                div.charts {
                    div.chart id="chart-spend" data-metric="spend" data-title={ "Spend (" (data["currency"].as_str().unwrap_or("")) ")" } {}
                    div.chart id="chart-conversions" data-metric="conversions" data-title="Conversions" {}
                    div.chart id="chart-roas" data-metric="roas" data-title="ROAS (conversion value / spend)" {}
                }
                h2 { "Campaigns" }
                table.campaigns {
                    thead { tr {
                        th { "Platform" } th { "Campaign" } th { "Account" } th { "Currency" }
                        th { (sort_link("spend", "Spend")) } th { (sort_link("conversions", "Conversions")) } th { "Value" }
                        th { (sort_link("cpa", "CPA")) } th { (sort_link("roas", "ROAS")) }
                    } }
                    tbody {
                        @for c in &campaigns {
                            tr {
                                td { (c.platform) } td { (c.campaign_name) br; code.muted { (c.campaign_id) } } td { (c.account_name) }
                                td { (c.reporting_currency) }
                                td.num { (money(&c.spend)) } td.num { (money(&c.conversions)) } td.num { (money(&c.conversion_value)) }
                                td.num { (ratio(c.cpa)) } td.num { (ratio(c.roas)) }
                            }
                        }
                    }
                }
                link rel="stylesheet" href="/assets/vendor/uplot/uPlot.min.css";
                script src="/assets/vendor/uplot/uPlot.iife.min.js" {}
            },
        ),
    )
}

fn action_row(a: &Action) -> Markup {
    html! {
        tr data-action-id=(a.id) data-state=(a.state.as_str()) {
            td { a href={ "/actions/" (a.id) } { "#" (a.id) } }
            td { code { (a.command) } }
            td { (badge(a.state)) @if let Some(code) = a.exit_code { " exit " (code) } }
            td { (a.started_at.format("%Y-%m-%d %H:%M:%S")) }
            td { @if let Some(run) = &a.run_id { a href={ "/runs/" (run) } { code { (run) } } } @else { span.muted { "–" } } }
        }
    }
}

/// `GET /actions`: the forms, and what this server started.
pub async fn actions(State(state): State<Arc<AppState>>) -> Response {
    let list = state.actions.as_ref().map(|a| a.list()).unwrap_or_default();
    let today = state.today();
    let why_disabled = if state.actions.is_none() {
        Some("This server was started without actions.".to_string())
    } else if !state.policy.actions_enabled() {
        Some(
            "Actions are disabled: the server listens beyond loopback without a token. Restart it with \
             --token-file FILE or MDP_SERVE_TOKEN set."
                .to_string(),
        )
    } else {
        None
    };
    page(
        StatusCode::OK,
        layout(
            "Actions",
            "Actions",
            list.iter().any(|a| a.state == ActionState::Running).then_some(3),
            html! {
                @if let Some(why) = &why_disabled { div.notice.error { (why) } }
                section.actions {
                    div.card {
                        h3 { "Pipeline" }
                        p.muted { "Ingest every enabled source, build and test the models (" code { "mdp pipeline" } ")." }
                        (pipeline_form(&state))
                    }
                    div.card {
                        h3 { "Backfill" }
                        p.muted { "Re-load a date range, then rebuild (" code { "mdp backfill" } ")." }
                        form method="post" action="/actions/backfill" {
                            (credentials(&state))
                            label { "From " input type="date" name="from" required value=(today - Duration::days(6)); }
                            label { "To " input type="date" name="to" required value=(today); }
                            div {
                                @for s in &state.config.catalog.sources {
                                    label.check { input type="checkbox" name="source" value=(s); " " (s) }
                                }
                                span.muted { " (none ticked: every source)" }
                            }
                            button type="submit" disabled[why_disabled.is_some()] { "Run backfill" }
                        }
                    }
                }
                p.muted { "A failed task is re-run from its run's page." }
                h2 { "Started by this server" }
                table.actions-list {
                    thead { tr { th { "#" } th { "Command" } th { "State" } th { "Started (UTC)" } th { "Run" } } }
                    tbody { @for a in &list { (action_row(a)) } }
                }
                @if list.is_empty() { p.muted { "Nothing yet." } }
            },
        ),
    )
}

/// `GET /actions/{id}`: one action's state and output tail (refreshes while it runs).
pub async fn action_detail(State(state): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    let Some(action) = state.actions.as_ref().and_then(|a| a.get(id)) else {
        return page(
            StatusCode::NOT_FOUND,
            layout("Action not found", "Actions", None, html! { p { "No action #" (id) "." } }),
        );
    };
    let running = action.state == ActionState::Running;
    page(
        StatusCode::OK,
        layout(
            &format!("Action #{id}"),
            "Actions",
            running.then_some(2),
            html! {
                table.actions-list { tbody { (action_row(&action)) } }
                @match action.state {
                    ActionState::Running => { p { "Running… this page refreshes." } }
                    ActionState::Succeeded => { p { "Succeeded." } }
                    ActionState::Failed => { p { "Failed" @if let Some(c) = action.exit_code { " (exit code " (c) ")" } "." } }
                }
                h2 { "Output (last lines)" }
                pre.output { @for line in &action.tail { (line) "\n" } }
            },
        ),
    )
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn refused(status: StatusCode, message: &str) -> Response {
    page(
        status,
        layout(
            "Action refused",
            "Actions",
            None,
            html! { div.notice.error { p { (message) } } p { a href="/actions" { "Back" } } },
        ),
    )
}

/// Check credentials, start the action, and send the browser to its page.
fn start_from_form(
    state: &AppState,
    headers: &HeaderMap,
    fields: &[(String, String)],
    request: Result<ActionRequest, String>,
) -> Response {
    let offered = Offered { form_token: field(fields, "token"), form_csrf: field(fields, "csrf") };
    match state.start_action(headers, offered, request) {
        Ok(id) => Redirect::to(&format!("/actions/{id}")).into_response(),
        Err((status, message)) => refused(status, &message),
    }
}

/// Validate a backfill's fields.
pub fn backfill_request(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
    sources: Vec<String>,
) -> Result<ActionRequest, String> {
    let date = |name: &str, v: Option<&str>| -> Result<NaiveDate, String> {
        let v =
            v.filter(|v| !v.is_empty()).ok_or_else(|| format!("backfill: `{name}` is missing (a date, YYYY-MM-DD)"))?;
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| format!("backfill: `{name}` = {v:?} is not a date (YYYY-MM-DD)"))
    };
    let (from, to) = (date("from", from)?, date("to", to)?);
    if from > to {
        return Err(format!("backfill: `from` ({from}) is after `to` ({to})"));
    }
    let known = &state.config.catalog.sources;
    if let Some(unknown) = sources.iter().find(|s| !known.contains(s)) {
        return Err(format!("backfill: no source {unknown:?} in this project (sources: {})", known.join(", ")));
    }
    Ok(ActionRequest::Backfill { from, to, sources })
}

/// Validate a task re-run: the id must be one a pipeline gives its tasks ([`TaskId`]).
pub fn retry_request(task_id: Option<&str>) -> Result<ActionRequest, String> {
    match task_id.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.len() <= 500 && !t.chars().any(char::is_control) => match t.parse::<TaskId>() {
            Ok(_) => Ok(ActionRequest::Retry { task_id: t.to_string() }),
            Err(e) => Err(format!("retry: {e}")),
        },
        Some(_) => Err("retry: `task_id` is not a task id".into()),
        None => Err("retry: `task_id` is missing".into()),
    }
}

/// `POST /actions/pipeline` (form).
pub async fn post_pipeline(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    start_from_form(&state, &headers, &fields, Ok(ActionRequest::Pipeline))
}

/// `POST /actions/backfill` (form: from, to, source…).
pub async fn post_backfill(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let sources = fields.iter().filter(|(k, _)| k == "source").map(|(_, v)| v.clone()).collect();
    let request = backfill_request(&state, field(&fields, "from"), field(&fields, "to"), sources);
    start_from_form(&state, &headers, &fields, request)
}

/// `POST /actions/retry` (form: task_id).
pub async fn post_retry(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let request = retry_request(field(&fields, "task_id"));
    start_from_form(&state, &headers, &fields, request)
}

/// Unknown paths.
pub async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        layout("Not found", "", None, html! { p { "No such page. " a href="/" { "Overview" } } }),
    )
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;

    #[test]
    fn a_re_run_must_name_a_task_of_a_pipeline() {
        let retried = |id: &str| match retry_request(Some(id)) {
            Ok(ActionRequest::Retry { task_id }) => Ok(task_id),
            Ok(_) => Err("not a retry".to_string()),
            Err(e) => Err(e),
        };
        assert_eq!(retried(" ingest.meta_ads.act_1 "), Ok("ingest.meta_ads.act_1".to_string()));
        assert_eq!(retried("model.mdp_marketing.fct_ad_performance_daily").map(|_| ()), Ok(()));
        let refused = retried("--no-build").unwrap_err();
        assert!(refused.starts_with("retry: `--no-build` is not a task id: expected `ingest.<source>"), "{refused}");
        assert_eq!(retried("  ").unwrap_err(), "retry: `task_id` is missing");
    }

    #[test]
    fn amounts_stay_exact_in_the_data_and_become_floats_only_in_the_chart_series() {
        let day = |platform: &str, spend: i64, value: i64| PlatformDay {
            date: "2026-06-30".into(),
            platform: platform.into(),
            reporting_currency: "EUR".into(),
            spend: Decimal::new(spend, 6),
            conversions: Decimal::new(3, 0),
            conversion_value: Decimal::new(value, 6),
            roas: None,
        };
        let days = [day("meta_ads", 100_000_001, 250_000_000), day("google_ads", 0, 0)];
        // The API's platform days carry the exact decimal text.
        let json = serde_json::to_value(&days[0]).unwrap();
        assert_eq!(json["spend"], "100.000001");
        assert_eq!(json["conversion_value"], "250.000000");
        // The chart library gets floats, one series per platform.
        let chart = chart_data(&days);
        assert_eq!(chart["platforms"], serde_json::json!(["google_ads", "meta_ads"]));
        assert_eq!(chart["series"]["spend"]["meta_ads"][0], 100.000001);
        assert_eq!(chart["series"]["spend"]["google_ads"][0], 0.0);
        assert_eq!(chart["currency"], "EUR");
    }
}
