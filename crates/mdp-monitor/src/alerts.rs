//! Alerts: incidents, and the notifiers that announce them.
//!
//! After every run, [`after_run`] reads what the run recorded — its `runs` row, its failed
//! `task_instances`, its `check_results` — and turns each subject into an [`Observation`]: the run
//! itself (`run:<command or job>`) and every check it ran (`check:<check_name>`). A pure state machine
//! ([`step`]) compares each observation with the subject's open incident, if any:
//!
//! | open incident | observation | effect | event |
//! |---|---|---|---|
//! | none | red | open an incident | `run_failed`, `check_failed` or `check_warned` |
//! | open | red | remember the run, stay silent | `check_failed` once if a warning became a failure |
//! | open | green | resolve it | `recovered` |
//! | none | green | nothing | — |
//!
//! So a subject that stays red notifies once, and once more when it recovers. Incidents live in the
//! metadata schema (`incidents`), open and resolved, as the history the web UI shows.
//!
//! Notifiers deliver each event: a generic **webhook** POSTs the [`payload`] (JSON, documented there),
//! a **Slack** incoming webhook gets [`slack_message`] (`text` + `blocks`), a **command** runs with the
//! payload on stdin and `MDP_ALERT_*` environment variables. Every delivery has a timeout; a failed
//! delivery is logged — with the url reduced to `scheme://host/…`, since webhook urls carry secrets —
//! and never fails the run. Urls are never logged, printed or stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDateTime, SecondsFormat, Utc};
use mdp_core::{RunStatus, TaskState};
use mdp_project::alerts::{redact_url, AlertEvent, AlertsConfig, NotifierKind, UrlRef};
use mdp_project::{Secret, SecretError, SecretRef};
use mdp_warehouse::meta::{CheckResultRecord, IncidentRecord, Metadata, RunRecord, TaskRecord};
use mdp_warehouse::Warehouse;
use serde_json::{json, Value};

use crate::checks::CheckStatus;

/// The version tag of the webhook payload's shape.
pub const PAYLOAD_SCHEMA: &str = "mdp.alert/v1";

/// How red a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warn,
    Fail,
}

/// What one run says about one subject (a run or a check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// `run:<subject>` or `check:<subject>`.
    pub key: String,
    /// `run` or `check`.
    pub kind: &'static str,
    pub subject: String,
    /// `None`: green.
    pub red: Option<Severity>,
    /// The status as recorded: `failed` / `success` for runs, `fail` / `error` / `warn` / `pass` for checks.
    pub status: String,
    pub message: Option<String>,
    pub observed: Option<String>,
    pub expected: Option<String>,
    /// For a failed run: its failed tasks, `task_id: first line of the error`.
    pub failed_tasks: Vec<String>,
}

/// The subject of a run's incident: the command's verb (`pipeline`, `backfill`, `ingest`, `build`), or
/// `schedule:<job>` for a scheduled job. Arguments (a backfill's dates) are not part of it.
pub fn run_subject(command: &str) -> String {
    command.split_whitespace().next().unwrap_or("run").to_string()
}

/// Turns a `check_results` status into a severity (`None`: green; `skipped`, which says nothing, and
/// words that are not check statuses are left out by [`observations`]).
fn check_severity(status: &str) -> Option<Option<Severity>> {
    match status.parse::<CheckStatus>().ok()? {
        CheckStatus::Fail | CheckStatus::Error => Some(Some(Severity::Fail)),
        CheckStatus::Warn => Some(Some(Severity::Warn)),
        CheckStatus::Pass => Some(None),
        CheckStatus::Skipped => None,
    }
}

/// What a finished run says: the run itself, then each check it recorded.
pub fn observations(run: &RunRecord, tasks: &[TaskRecord], checks: &[CheckResultRecord]) -> Vec<Observation> {
    let mut out = Vec::new();
    let subject = run_subject(&run.command);
    let red = match run.status.parse::<RunStatus>() {
        Ok(RunStatus::Failed) => Some(Some(Severity::Fail)),
        Ok(RunStatus::Success) => Some(None),
        Ok(RunStatus::Running) | Err(_) => None, // still running: nothing to say yet
    };
    if let Some(red) = red {
        let failed_tasks = tasks
            .iter()
            .filter(|t| t.state.parse::<TaskState>() == Ok(TaskState::Failed))
            .map(|t| format!("{}: {}", t.task_id, t.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("")))
            .collect();
        out.push(Observation {
            key: format!("run:{subject}"),
            kind: "run",
            subject,
            red,
            status: run.status.clone(),
            message: run.error.clone(),
            observed: None,
            expected: None,
            failed_tasks,
        });
    }
    for check in checks {
        let Some(red) = check_severity(&check.status) else { continue };
        out.push(Observation {
            key: format!("check:{}", check.check_name),
            kind: "check",
            subject: check.check_name.clone(),
            red,
            status: check.status.clone(),
            message: check.message.clone(),
            observed: check.observed.clone(),
            expected: check.expected.clone(),
            failed_tasks: Vec::new(),
        });
    }
    out
}

/// The severity an incident's last status (a run's or a check's) stands for.
fn severity_of_status(status: Option<&str>) -> Option<Severity> {
    let status = status?;
    match status.parse::<RunStatus>() {
        Ok(RunStatus::Failed) => Some(Severity::Fail),
        Ok(RunStatus::Success | RunStatus::Running) => None,
        Err(_) => check_severity(status).flatten(),
    }
}

/// One state change of an incident, and the event to announce (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub incident: IncidentRecord,
    pub event: Option<AlertEvent>,
}

/// The incident state machine: given the subject's open incident (if any) and what a run observed,
/// the incident's new state and the event to announce. `None`: nothing changes (green and no open
/// incident). `new_id` names a newly opened incident.
pub fn step(
    open: Option<&IncidentRecord>,
    observation: &Observation,
    run_id: &str,
    now: NaiveDateTime,
    new_id: impl FnOnce() -> String,
) -> Option<Transition> {
    match (open, observation.red) {
        (None, None) => None,
        (None, Some(severity)) => {
            let event = match (observation.kind, severity) {
                ("run", _) => AlertEvent::RunFailed,
                (_, Severity::Fail) => AlertEvent::CheckFailed,
                (_, Severity::Warn) => AlertEvent::CheckWarned,
            };
            Some(Transition {
                incident: IncidentRecord {
                    incident_id: new_id(),
                    incident_key: observation.key.clone(),
                    kind: observation.kind.to_string(),
                    subject: observation.subject.clone(),
                    status: "open".into(),
                    opened_at: now,
                    resolved_at: None,
                    opened_run_id: Some(run_id.to_string()),
                    last_seen_run_id: Some(run_id.to_string()),
                    last_status: Some(observation.status.clone()),
                    message: observation.message.clone(),
                },
                event: Some(event),
            })
        }
        (Some(open), Some(severity)) => {
            let was = severity_of_status(open.last_status.as_deref());
            // Still red: silent, unless a warning has become a failure (a new, worse condition).
            let escalated = observation.kind == "check" && was == Some(Severity::Warn) && severity == Severity::Fail;
            Some(Transition {
                incident: IncidentRecord {
                    last_seen_run_id: Some(run_id.to_string()),
                    last_status: Some(observation.status.clone()),
                    message: observation.message.clone(),
                    ..open.clone()
                },
                event: escalated.then_some(AlertEvent::CheckFailed),
            })
        }
        (Some(open), None) => Some(Transition {
            incident: IncidentRecord {
                status: "resolved".into(),
                resolved_at: Some(now),
                last_seen_run_id: Some(run_id.to_string()),
                last_status: Some(observation.status.clone()),
                // Keep the red message: it says what the incident was.
                ..open.clone()
            },
            event: Some(AlertEvent::Recovered),
        }),
    }
}

/// An event to announce, with what the run observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub event: AlertEvent,
    pub incident: IncidentRecord,
    pub run_id: String,
    pub observation: Observation,
}

fn iso(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The JSON a generic webhook receives (and a command hook reads on stdin):
///
/// ```json
/// {
///   "schema": "mdp.alert/v1",
///   "event": "run_failed | check_failed | check_warned | recovered",
///   "project": "my_marketing",
///   "incident": {
///     "id": "0193…", "key": "run:pipeline", "kind": "run | check", "subject": "pipeline",
///     "status": "open | resolved", "opened_at": "2026-06-30T06:00:01.123Z", "resolved_at": null,
///     "opened_run_id": "0193…"
///   },
///   "run_id": "0193…",            // the run that caused this event
///   "status": "failed",            // what that run recorded: failed/success, or fail/error/warn/pass
///   "message": "…",                // the run's error or the check's message (on recovery: the incident's)
///   "observed": "…", "expected": "…",   // checks only (null otherwise)
///   "failed_tasks": ["ingest.tiktok_ads.123: …"],   // failed runs only
///   "sent_at": "2026-06-30T06:00:02.456Z"
/// }
/// ```
pub fn payload(project: &str, alert: &Alert, sent_at: NaiveDateTime) -> Value {
    let i = &alert.incident;
    json!({
        "schema": PAYLOAD_SCHEMA,
        "event": alert.event.as_str(),
        "project": project,
        "incident": {
            "id": i.incident_id,
            "key": i.incident_key,
            "kind": i.kind,
            "subject": i.subject,
            "status": i.status,
            "opened_at": iso(i.opened_at),
            "resolved_at": i.resolved_at.map(iso),
            "opened_run_id": i.opened_run_id,
        },
        "run_id": alert.run_id,
        "status": alert.observation.status,
        "message": alert.observation.message.clone().or_else(|| i.message.clone()),
        "observed": alert.observation.observed,
        "expected": alert.observation.expected,
        "failed_tasks": alert.observation.failed_tasks,
        "sent_at": iso(sent_at),
    })
}

/// A one-line title: `mdp my_marketing: run pipeline failed`.
pub fn title(project: &str, alert: &Alert) -> String {
    let i = &alert.incident;
    let what = match alert.event {
        AlertEvent::RunFailed => "failed",
        AlertEvent::CheckFailed => "failed",
        AlertEvent::CheckWarned => "warned",
        AlertEvent::Recovered => "recovered",
    };
    format!("mdp {project}: {} {} {what}", i.kind, i.subject)
}

/// Slack's incoming-webhook message: `text` (the notification's fallback) and `blocks`.
pub fn slack_message(project: &str, alert: &Alert) -> Value {
    let icon = match alert.event {
        AlertEvent::RunFailed | AlertEvent::CheckFailed => ":red_circle:",
        AlertEvent::CheckWarned => ":warning:",
        AlertEvent::Recovered => ":large_green_circle:",
    };
    let title = title(project, alert);
    let mut body = format!("{icon} *{title}*");
    let message = alert.observation.message.clone().or_else(|| alert.incident.message.clone());
    if let (Some(message), false) = (&message, alert.event == AlertEvent::Recovered) {
        body.push_str(&format!("\n```{}```", truncate(message, 1500)));
    }
    if let (Some(observed), Some(expected)) = (&alert.observation.observed, &alert.observation.expected) {
        body.push_str(&format!("\nobserved `{}`, expected `{}`", truncate(observed, 200), truncate(expected, 200)));
    }
    if !alert.observation.failed_tasks.is_empty() {
        let tasks: Vec<String> =
            alert.observation.failed_tasks.iter().take(10).map(|t| format!("• {}", truncate(t, 200))).collect();
        body.push_str(&format!("\nfailed tasks:\n{}", tasks.join("\n")));
    }
    let context = format!(
        "incident `{}` · run `{}` · opened {}{}",
        alert.incident.incident_key,
        alert.run_id,
        iso(alert.incident.opened_at),
        alert.incident.resolved_at.map(|r| format!(" · resolved {}", iso(r))).unwrap_or_default()
    );
    json!({
        "text": format!("{icon} {title}"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&body, 2900)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// An HTTP client error with its causes (`error sending request: tcp connect error: Connection
/// refused`), without the url reqwest puts in its message: webhook urls carry secrets.
pub fn http_error(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars).collect();
    out.push('…');
    out
}

/// A notifier, its secret resolved.
pub struct Notifier {
    pub name: String,
    pub kind: NotifierKind,
    pub on: Vec<AlertEvent>,
    pub timeout: Duration,
    target: Target,
}

enum Target {
    Url(Secret),
    Command(Vec<String>),
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("name", &self.name).field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl Notifier {
    /// What may be shown of where it delivers: `scheme://host/…`, or the program.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Url(url) => redact_url(url.expose_secret()),
            Target::Command(argv) => argv.first().cloned().unwrap_or_default(),
        }
    }
}

/// Looks up a secret (the CLI resolves relative to the project directory).
pub type SecretResolver<'a> = &'a (dyn Fn(&SecretRef) -> Result<Secret, SecretError> + Sync);

/// The configured notifiers with their urls resolved. A notifier whose secret cannot be read is left
/// out with a warning (the run goes on); the warning names where the secret was looked for.
pub fn notifiers(config: &AlertsConfig, resolve: SecretResolver<'_>) -> Vec<Notifier> {
    let mut out = Vec::new();
    for n in &config.notifiers {
        let target = match (&n.kind, &n.url) {
            (NotifierKind::Command, _) => Target::Command(n.command.clone()),
            (_, Some(UrlRef::Plain(url))) => Target::Url(Secret::new(url.clone())),
            (_, Some(UrlRef::Secret(reference))) => match resolve(reference) {
                Ok(secret) => Target::Url(secret),
                Err(e) => {
                    tracing::warn!(
                        "alerts: notifier {} is skipped: its url ({}) cannot be read: {e}",
                        n.name,
                        reference.describe()
                    );
                    continue;
                }
            },
            (_, None) => continue, // refused by validation
        };
        out.push(Notifier {
            name: n.name.clone(),
            kind: n.kind,
            on: n.on.clone(),
            timeout: Duration::from_secs(n.timeout_seconds.max(1)),
            target,
        });
    }
    out
}

/// Delivers one alert through one notifier. The error never contains the url.
pub async fn deliver(
    notifier: &Notifier,
    project: &str,
    alert: &Alert,
    client: &reqwest::Client,
    working_dir: &Path,
) -> Result<(), String> {
    let body = payload(project, alert, Utc::now().naive_utc());
    match &notifier.target {
        Target::Url(url) => {
            let message = match notifier.kind {
                NotifierKind::Slack => slack_message(project, alert),
                _ => body,
            };
            let response = client
                .post(url.expose_secret())
                .timeout(notifier.timeout)
                .json(&message)
                .send()
                .await
                .map_err(http_error)?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the endpoint answered HTTP {status}"))
            }
        }
        Target::Command(argv) => run_command(argv, &body, alert, project, notifier.timeout, working_dir).await,
    }
}

async fn run_command(
    argv: &[String],
    body: &Value,
    alert: &Alert,
    project: &str,
    timeout: Duration,
    working_dir: &Path,
) -> Result<(), String> {
    use tokio::io::AsyncWriteExt;
    let (program, args) = argv.split_first().ok_or("the command is empty")?;
    let i = &alert.incident;
    let message = alert.observation.message.clone().or_else(|| i.message.clone()).unwrap_or_default();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(working_dir)
        .env("MDP_ALERT_EVENT", alert.event.as_str())
        .env("MDP_ALERT_PROJECT", project)
        .env("MDP_ALERT_INCIDENT_ID", &i.incident_id)
        .env("MDP_ALERT_KEY", &i.incident_key)
        .env("MDP_ALERT_KIND", &i.kind)
        .env("MDP_ALERT_SUBJECT", &i.subject)
        .env("MDP_ALERT_STATUS", &alert.observation.status)
        .env("MDP_ALERT_MESSAGE", message)
        .env("MDP_ALERT_RUN_ID", &alert.run_id)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program}: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let text = body.to_string();
    let run = async move {
        // A hook that does not read its stdin is fine: ignore a closed pipe.
        let _ = stdin.write_all(text.as_bytes()).await;
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("{program} did not finish within {timeout:?} (killed)"))?
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        Err(format!("{program} exited with {}: {}", output.status, truncate(last, 300)))
    }
}

/// Everything [`after_run`] needs besides the warehouse.
pub struct AlertContext<'a> {
    /// The project's name (in payloads).
    pub project: &'a str,
    /// Command hooks run here.
    pub project_root: &'a Path,
    /// `None`: incidents are tracked, nobody is notified.
    pub config: Option<&'a AlertsConfig>,
    pub resolve: SecretResolver<'a>,
}

/// What [`after_run`] did.
#[derive(Debug, Default)]
pub struct AlertReport {
    /// Events announced (or attempted), with the incident key.
    pub events: Vec<(AlertEvent, String)>,
    /// Deliveries that succeeded: (notifier, event).
    pub delivered: Vec<(String, AlertEvent)>,
    /// Deliveries that failed: (notifier, redacted target, error without url).
    pub failed: Vec<(String, String, String)>,
}

impl AlertReport {
    /// One line for the console, `None` when nothing was announced.
    pub fn summary(&self) -> Option<String> {
        if self.events.is_empty() {
            return None;
        }
        let events: Vec<String> = self.events.iter().map(|(e, key)| format!("{} {key}", e.as_str())).collect();
        let mut line = format!("alerts: {}", events.join(", "));
        if !self.delivered.is_empty() || !self.failed.is_empty() {
            line.push_str(&format!("; {} delivered, {} failed", self.delivered.len(), self.failed.len()));
        }
        Some(line)
    }
}

/// After a run finished (its outcome recorded, the writer lock still held): update incidents from
/// what the run recorded and notify. Never fails: problems are logged as warnings.
pub async fn after_run(warehouse: &dyn Warehouse, context: &AlertContext<'_>, run_id: &str) -> AlertReport {
    match process(warehouse, context, run_id).await {
        Ok(report) => report,
        Err(e) => {
            tracing::warn!("alerts: cannot update incidents for run {run_id}: {e}");
            AlertReport::default()
        }
    }
}

async fn process(
    warehouse: &dyn Warehouse,
    context: &AlertContext<'_>,
    run_id: &str,
) -> Result<AlertReport, mdp_warehouse::WarehouseError> {
    let meta = Metadata::new(warehouse);
    let Some(run) = meta.run(run_id).await? else {
        return Ok(AlertReport::default());
    };
    let tasks = meta.tasks_of_run(run_id).await?;
    let checks = meta.check_results_of_run(run_id).await?;
    let open = meta.open_incidents().await?;
    let now = Utc::now().naive_utc();
    let mut changed = Vec::new();
    let mut alerts = Vec::new();
    for observation in observations(&run, &tasks, &checks) {
        let current = open.iter().find(|i| i.incident_key == observation.key);
        let Some(transition) = step(current, &observation, run_id, now, || uuid::Uuid::now_v7().to_string()) else {
            continue;
        };
        if let Some(event) = transition.event {
            alerts.push(Alert {
                event,
                incident: transition.incident.clone(),
                run_id: run_id.to_string(),
                observation,
            });
        }
        changed.push(transition.incident);
    }
    // Recorded before notifying: a notifier that fails is not retried on every later run.
    meta.save_incidents(&changed).await?;
    Ok(notify(context, &alerts).await)
}

/// Deliver each alert to each notifier subscribed to its event, all at once.
pub async fn notify(context: &AlertContext<'_>, alerts: &[Alert]) -> AlertReport {
    let mut report = AlertReport {
        events: alerts.iter().map(|a| (a.event, a.incident.incident_key.clone())).collect(),
        ..AlertReport::default()
    };
    let Some(config) = context.config else { return report };
    if alerts.is_empty() {
        return report;
    }
    let notifiers = notifiers(config, context.resolve);
    let client = match reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build() {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!("alerts: cannot build an HTTP client: {}", http_error(e));
            return report;
        }
    };
    let root: PathBuf = context.project_root.to_path_buf();
    let (client, root) = (&client, &root);
    let mut deliveries = Vec::new();
    for alert in alerts {
        for n in notifiers.iter().filter(|n| n.on.contains(&alert.event)) {
            deliveries.push(async move { (n, alert.event, deliver(n, context.project, alert, client, root).await) });
        }
    }
    for (notifier, event, result) in futures::future::join_all(deliveries).await {
        match result {
            Ok(()) => report.delivered.push((notifier.name.clone(), event)),
            Err(error) => {
                let target = notifier.describe();
                tracing::warn!(
                    "alerts: notifier {} ({target}) could not deliver {}: {error}",
                    notifier.name,
                    event.as_str()
                );
                report.failed.push((notifier.name.clone(), target, error));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn run(status: &str, error: Option<&str>) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            command: "backfill 2026-06-01..2026-06-30".into(),
            status: status.into(),
            started_at: chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap().and_hms_opt(6, 0, 0).unwrap(),
            finished_at: None,
            error: error.map(str::to_string),
        }
    }

    fn check(name: &str, status: &str) -> CheckResultRecord {
        CheckResultRecord {
            check_name: name.into(),
            check_kind: Some("volume".into()),
            status: status.into(),
            observed: Some("120".into()),
            expected: Some(">= 500".into()),
            message: Some(format!("{name} is {status}")),
        }
    }

    /// Runs a sequence of observations of one subject through the state machine; returns the events.
    fn events(observations: &[Observation]) -> Vec<Option<AlertEvent>> {
        let mut open: Option<IncidentRecord> = None;
        let mut ids = 0;
        let mut out = Vec::new();
        for (n, o) in observations.iter().enumerate() {
            let t = step(open.as_ref(), o, &format!("run{n}"), at("2026-06-30 06:00:00"), || {
                ids += 1;
                format!("incident{ids}")
            });
            out.push(t.as_ref().and_then(|t| t.event));
            open = t.map(|t| t.incident).filter(|i| i.status == "open");
        }
        out
    }

    fn red_run() -> Observation {
        observations(&run("failed", Some("1 failed")), &[], &[]).remove(0)
    }

    fn green_run() -> Observation {
        observations(&run("success", None), &[], &[]).remove(0)
    }

    #[test]
    fn a_red_subject_notifies_once_then_once_on_recovery_and_again_when_red_anew() {
        use AlertEvent::*;
        assert_eq!(
            events(&[green_run(), red_run(), red_run(), red_run(), green_run(), green_run(), red_run()]),
            [None, Some(RunFailed), None, None, Some(Recovered), None, Some(RunFailed)]
        );
    }

    #[test]
    fn incidents_record_when_and_by_which_run_and_resolution_keeps_the_message() {
        let opened = step(None, &red_run(), "run1", at("2026-06-30 06:00:00"), || "i1".into()).unwrap();
        assert_eq!(opened.incident.incident_key, "run:backfill", "arguments are not part of the subject");
        assert_eq!(opened.incident.status, "open");
        assert_eq!(opened.incident.opened_run_id.as_deref(), Some("run1"));
        let still =
            step(Some(&opened.incident), &red_run(), "run2", at("2026-06-30 07:00:00"), || unreachable!()).unwrap();
        assert_eq!(still.event, None);
        assert_eq!(still.incident.incident_id, "i1");
        assert_eq!(still.incident.last_seen_run_id.as_deref(), Some("run2"));
        assert_eq!(still.incident.opened_at, at("2026-06-30 06:00:00"));
        let resolved =
            step(Some(&still.incident), &green_run(), "run3", at("2026-06-30 08:00:00"), || unreachable!()).unwrap();
        assert_eq!(resolved.event, Some(AlertEvent::Recovered));
        assert_eq!(resolved.incident.status, "resolved");
        assert_eq!(resolved.incident.resolved_at, Some(at("2026-06-30 08:00:00")));
        assert_eq!(resolved.incident.message.as_deref(), Some("1 failed"));
    }

    #[test]
    fn checks_warn_then_escalate_once_and_skipped_results_say_nothing() {
        use AlertEvent::*;
        let obs = |status: &str| {
            observations(&run("success", None), &[], &[check("volume.google_ads", status)]).pop().unwrap()
        };
        assert_eq!(obs("warn").key, "check:volume.google_ads");
        assert_eq!(
            events(&[obs("warn"), obs("warn"), obs("fail"), obs("error"), obs("warn"), obs("pass"), obs("fail")]),
            [Some(CheckWarned), None, Some(CheckFailed), None, None, Some(Recovered), Some(CheckFailed)]
        );
        assert_eq!(observations(&run("running", None), &[], &[check("x", "skipped")]), []);
    }

    fn alert(event: AlertEvent) -> Alert {
        let mut tasks = vec![TaskRecord {
            run_id: "r".into(),
            task_id: "ingest.tiktok_ads.1".into(),
            kind: "ingest".into(),
            state: "failed".into(),
            attempts: 2,
            started_at: None,
            finished_at: None,
            rows: None,
            error: Some("tiktok_ads: the access token was rejected\nmore".into()),
            log: None,
        }];
        tasks.push(TaskRecord { task_id: "model.x".into(), state: "upstream_failed".into(), ..tasks[0].clone() });
        let observation = observations(&run("failed", Some("1 failed")), &tasks, &[]).remove(0);
        let incident = step(None, &observation, "run1", at("2026-06-30 06:00:00"), || "i1".into()).unwrap().incident;
        Alert { event, incident, run_id: "run1".into(), observation }
    }

    #[test]
    fn the_webhook_payload_has_the_documented_fields() {
        let p = payload("demo", &alert(AlertEvent::RunFailed), at("2026-06-30 06:00:05"));
        assert_eq!(p["schema"], PAYLOAD_SCHEMA);
        assert_eq!(p["event"], "run_failed");
        assert_eq!(p["project"], "demo");
        assert_eq!(p["incident"]["key"], "run:backfill");
        assert_eq!(p["incident"]["kind"], "run");
        assert_eq!(p["incident"]["status"], "open");
        assert_eq!(p["incident"]["opened_at"], "2026-06-30T06:00:00.000Z");
        assert_eq!(p["incident"]["resolved_at"], Value::Null);
        assert_eq!(p["run_id"], "run1");
        assert_eq!(p["status"], "failed");
        assert_eq!(p["message"], "1 failed");
        assert_eq!(p["failed_tasks"], json!(["ingest.tiktok_ads.1: tiktok_ads: the access token was rejected"]));
        assert_eq!(p["sent_at"], "2026-06-30T06:00:05.000Z");

        let c = observations(&run("success", None), &[], &[check("volume.x", "warn")]).pop().unwrap();
        let incident = step(None, &c, "run1", at("2026-06-30 06:00:00"), || "i2".into()).unwrap().incident;
        let p = payload(
            "demo",
            &Alert { event: AlertEvent::CheckWarned, incident, run_id: "run1".into(), observation: c },
            at("2026-06-30 06:00:05"),
        );
        assert_eq!(
            (p["event"].as_str(), p["observed"].as_str(), p["expected"].as_str()),
            (Some("check_warned"), Some("120"), Some(">= 500"))
        );
    }

    #[test]
    fn the_slack_message_has_text_and_blocks() {
        let m = slack_message("demo", &alert(AlertEvent::RunFailed));
        assert_eq!(m["text"], ":red_circle: mdp demo: run backfill failed");
        assert_eq!(m["blocks"][0]["type"], "section");
        let body = m["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(body.contains("1 failed") && body.contains("• ingest.tiktok_ads.1"), "{body}");
        assert_eq!(m["blocks"][1]["type"], "context");
        assert!(m["blocks"][1]["elements"][0]["text"].as_str().unwrap().contains("run:backfill"));
        let r = slack_message("demo", &alert(AlertEvent::Recovered));
        assert_eq!(r["text"], ":large_green_circle: mdp demo: run backfill recovered");
        assert!(truncate(&"x".repeat(5000), 10).chars().count() == 11);
    }

    #[tokio::test]
    async fn a_failing_endpoint_is_reported_without_its_url() {
        // Nothing listens on this port: the error must not name the url's secret path.
        let notifier = Notifier {
            name: "ops".into(),
            kind: NotifierKind::Webhook,
            on: AlertEvent::all(),
            timeout: Duration::from_secs(2),
            target: Target::Url(Secret::new("http://127.0.0.1:9/hooks/s3cr3t-path".into())),
        };
        let error = deliver(&notifier, "demo", &alert(AlertEvent::RunFailed), &reqwest::Client::new(), Path::new("."))
            .await
            .unwrap_err();
        assert!(!error.contains("s3cr3t"), "{error}");
        assert_eq!(notifier.describe(), "http://127.0.0.1:9/…");
        assert!(!format!("{notifier:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn a_command_hook_gets_the_payload_on_stdin_and_the_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        let notifier = Notifier {
            name: "hook".into(),
            kind: NotifierKind::Command,
            on: AlertEvent::all(),
            timeout: Duration::from_secs(10),
            target: Target::Command(vec![
                "sh".into(),
                "-c".into(),
                format!("echo \"$MDP_ALERT_EVENT $MDP_ALERT_KEY $MDP_ALERT_RUN_ID\" > {0}; cat >> {0}", out.display()),
            ]),
        };
        deliver(&notifier, "demo", &alert(AlertEvent::RunFailed), &reqwest::Client::new(), dir.path()).await.unwrap();
        let written = std::fs::read_to_string(&out).unwrap();
        let (first, json) = written.split_once('\n').unwrap();
        assert_eq!(first, "run_failed run:backfill run1");
        let body: Value = serde_json::from_str(json.trim()).unwrap();
        assert_eq!(body["incident"]["key"], "run:backfill");

        let failing = Notifier {
            target: Target::Command(vec!["sh".into(), "-c".into(), "echo nope >&2; exit 3".into()]),
            ..notifier
        };
        let error = deliver(&failing, "demo", &alert(AlertEvent::RunFailed), &reqwest::Client::new(), dir.path())
            .await
            .unwrap_err();
        assert!(error.contains("exit status: 3") && error.contains("nope"), "{error}");
    }
}
