//! The `alerts:` and `lineage:` sections of `mdp.yml`.
//!
//! ```yaml
//! alerts:
//!   notifiers:
//!     - name: ops
//!       type: slack                          # webhook | slack | command
//!       url: { env: SLACK_WEBHOOK_URL }      # a secret: { env } / { file }; a plain url only for webhooks without secrets
//!       on: [run_failed, check_failed, recovered]   # default: every event
//!       timeout_seconds: 10                  # default 10
//!     - name: pager
//!       type: command
//!       command: [./scripts/page.sh, --team, data]  # gets the JSON payload on stdin, MDP_ALERT_* variables
//! lineage:
//!   file: target/openlineage.jsonl           # append one OpenLineage RunEvent per line
//!   url: http://localhost:5000               # and/or POST to {url}/api/v1/lineage (Marquez)
//!   api_key: { env: OPENLINEAGE_API_KEY }    # optional bearer token
//!   namespace: my_marketing                  # default: the project's name
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, DiagnosticBuilder};
use crate::locate::Outline;
use crate::secret::SecretRef;

/// Notifiers for failed runs and checks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Where incidents are announced; each gets every event it subscribes to.
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
}

/// One notifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Unique among notifiers; names it in logs (its url never is).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NotifierKind,
    /// The url to POST to (`webhook`, `slack`). Webhook urls usually carry a secret: write
    /// `{ env: VAR }` or `{ file: path }`; a plain string is accepted for a `webhook` without one.
    #[serde(default)]
    pub url: Option<UrlRef>,
    /// The program and its arguments (`command`), run from the project directory.
    #[serde(default)]
    pub command: Vec<String>,
    /// The events this notifier gets (default: all).
    #[serde(default = "AlertEvent::all")]
    pub on: Vec<AlertEvent>,
    /// A delivery taking longer is abandoned (and logged), default 10 seconds.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn default_timeout_seconds() -> u64 {
    10
}

/// The longest `timeout_seconds` accepted: a notifier must never hold a run for long.
pub const MAX_NOTIFIER_TIMEOUT_SECONDS: u64 = 300;

/// How a notifier delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// POST the JSON payload.
    Webhook,
    /// POST a Slack incoming-webhook message (`text` and `blocks`).
    Slack,
    /// Run a program with the JSON payload on stdin and `MDP_ALERT_*` environment variables.
    Command,
}

/// What happened to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// A run (a command or a scheduled job) failed where it had not been failing.
    RunFailed,
    /// A check failed (or errored), or a warning became a failure.
    CheckFailed,
    /// A check warned where it had been passing.
    CheckWarned,
    /// A failing run or check is green again.
    Recovered,
}

impl AlertEvent {
    /// Every event, the default of `on:`.
    pub fn all() -> Vec<AlertEvent> {
        vec![AlertEvent::RunFailed, AlertEvent::CheckFailed, AlertEvent::CheckWarned, AlertEvent::Recovered]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::RunFailed => "run_failed",
            AlertEvent::CheckFailed => "check_failed",
            AlertEvent::CheckWarned => "check_warned",
            AlertEvent::Recovered => "recovered",
        }
    }
}

/// A url: written in the file (no secret in it) or a secret reference.
#[derive(Clone, PartialEq, Eq)]
pub enum UrlRef {
    Plain(String),
    Secret(SecretRef),
}

impl fmt::Debug for UrlRef {
    // A plain url may still hold a secret that validation could not spot: show its origin only.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlRef::Plain(url) => write!(formatter, "Plain({})", redact_url(url)),
            UrlRef::Secret(reference) => write!(formatter, "Secret({})", reference.describe()),
        }
    }
}

impl<'de> Deserialize<'de> for UrlRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UrlRefVisitor)
    }
}

struct UrlRefVisitor;

impl<'de> Visitor<'de> for UrlRefVisitor {
    type Value = UrlRef;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a url, or { env: VAR_NAME } / { file: path } when the url holds a secret")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<UrlRef, E> {
        Ok(UrlRef::Plain(value.to_owned()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<UrlRef, A::Error> {
        SecretRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(UrlRef::Secret)
    }
}

/// `scheme://host[:port]/…`: what may be shown of a url that can carry a secret in its path, query or
/// user info (Slack's incoming webhooks carry it in the path). `<url>` when it is not a url.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "<url>".to_owned() };
    if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        return "<url>".to_owned();
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.is_empty() {
        return "<url>".to_owned();
    }
    let more = if rest.len() > authority.len() || authority.contains('@') { "/…" } else { "" };
    format!("{scheme}://{host}{more}")
}

/// Where OpenLineage events go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageConfig {
    /// A file (relative to the project directory) events are appended to, one JSON object per line.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The base url of an OpenLineage HTTP endpoint (Marquez: `http://localhost:5000`).
    #[serde(default)]
    pub url: Option<String>,
    /// The path events are POSTed to under `url` (default `api/v1/lineage`, as Marquez).
    #[serde(default = "default_lineage_endpoint")]
    pub endpoint: String,
    /// Sent as `Authorization: Bearer <key>`.
    #[serde(default)]
    pub api_key: Option<SecretRef>,
    /// The namespace of mdp's jobs (default: the project's name).
    #[serde(default)]
    pub namespace: Option<String>,
    /// A POST taking longer is abandoned (and logged), default 5 seconds.
    #[serde(default = "default_lineage_timeout")]
    pub timeout_seconds: u64,
}

fn default_lineage_endpoint() -> String {
    "api/v1/lineage".into()
}

fn default_lineage_timeout() -> u64 {
    5
}

impl LineageConfig {
    /// The url events are POSTed to, `{url}/{endpoint}`.
    pub fn post_url(&self) -> Option<String> {
        self.url.as_ref().map(|url| format!("{}/{}", url.trim_end_matches('/'), self.endpoint.trim_start_matches('/')))
    }
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && redact_url(url) != "<url>"
}

/// Whether a url visibly carries a secret: user info, a query string, or a Slack hook path.
fn carries_secret(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@') || rest.contains('?') || url.contains("hooks.slack.com")
}

pub(crate) fn validate_alerts(
    alerts: &AlertsConfig,
    raw_text: &str,
    outline: &Outline,
    diagnostics: &DiagnosticBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let mut indexes_by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, notifier) in alerts.notifiers.iter().enumerate() {
        indexes_by_name.entry(notifier.name.as_str()).or_default().push(index);
        let key = |field: &str| format!("alerts.notifiers[{index}].{field}");
        if notifier.name.trim().is_empty() {
            problems.push(diagnostics.at_key(key("name"), "a notifier needs a name, e.g. `name: ops_slack`"));
        }
        match notifier.kind {
            NotifierKind::Webhook | NotifierKind::Slack => {
                let kind = if notifier.kind == NotifierKind::Slack { "slack" } else { "webhook" };
                if !notifier.command.is_empty() {
                    problems.push(diagnostics.at_key(
                        key("command"),
                        format!("a {kind} notifier posts to `url`; `command` is for `type: command`"),
                    ));
                }
                match &notifier.url {
                    None => problems.push(diagnostics.at_key(
                        key("type"),
                        format!("a {kind} notifier needs `url: {{ env: VAR_NAME }}` (the webhook url)"),
                    )),
                    Some(UrlRef::Secret(_)) => {}
                    Some(UrlRef::Plain(url)) => {
                        // Never echo the url: it may be a secret.
                        let written = outline
                            .find(&key("url"))
                            .and_then(|position| raw_text.lines().nth(position.line - 1))
                            .unwrap_or_default();
                        if !is_http_url(url) {
                            problems.push(diagnostics.at_key(key("url"), "expected an http:// or https:// url"));
                        } else if (notifier.kind == NotifierKind::Slack || carries_secret(url))
                            && !written.contains("${")
                        {
                            problems.push(diagnostics.at_key(
                                key("url"),
                                "this url carries a secret (a Slack hook, a token in the query or user info) and is \
                                 written inline, where it would be committed; use `url: { env: VAR_NAME }` or \
                                 `url: { file: path }`",
                            ));
                        }
                    }
                }
            }
            NotifierKind::Command => {
                if notifier.url.is_some() {
                    problems.push(diagnostics.at_key(
                        key("url"),
                        "a command notifier runs `command`; `url` is for `type: webhook` or `type: slack`",
                    ));
                }
                if notifier.command.first().is_none_or(|program| program.trim().is_empty()) {
                    problems.push(diagnostics.at_key(
                        key("type"),
                        "a command notifier needs `command: [program, arg, …]`, e.g. `command: [./notify.sh]`",
                    ));
                }
            }
        }
        if notifier.on.is_empty() {
            problems.push(diagnostics.at_key(
                key("on"),
                "`on` is empty, so this notifier would never be used; list events (run_failed, check_failed, \
                 check_warned, recovered) or leave `on` out for all",
            ));
        }
        if !(1..=MAX_NOTIFIER_TIMEOUT_SECONDS).contains(&notifier.timeout_seconds) {
            problems.push(diagnostics.at_key(
                key("timeout_seconds"),
                format!(
                    "expected between 1 and {MAX_NOTIFIER_TIMEOUT_SECONDS} seconds, got {}",
                    notifier.timeout_seconds
                ),
            ));
        }
    }
    for (name, indexes) in indexes_by_name.into_iter().filter(|(_, indexes)| indexes.len() > 1) {
        for &index in &indexes[1..] {
            problems.push(diagnostics.at_key(
                format!("alerts.notifiers[{index}].name"),
                format!("duplicate notifier name '{name}', also used by alerts.notifiers[{}]", indexes[0]),
            ));
        }
    }
}

pub(crate) fn validate_lineage(
    lineage: &LineageConfig,
    diagnostics: &DiagnosticBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    if lineage.file.is_none() && lineage.url.is_none() {
        problems.push(diagnostics.at_key(
            "lineage",
            "say where events go: `file: target/openlineage.jsonl` and/or `url: http://localhost:5000`",
        ));
    }
    if let Some(url) = &lineage.url {
        if !is_http_url(url) {
            problems.push(diagnostics.at_key("lineage.url", "expected an http:// or https:// url"));
        } else if carries_secret(url) {
            problems.push(diagnostics.at_key(
                "lineage.url",
                "this url carries a secret (user info or a query string); put the token in `api_key: { env: VAR_NAME }`",
            ));
        }
    }
    if lineage.file.as_ref().is_some_and(|file| file.as_os_str().is_empty()) {
        problems.push(diagnostics.at_key("lineage.file", "the file path is empty"));
    }
    if lineage.namespace.as_ref().is_some_and(|namespace| namespace.trim().is_empty()) {
        problems.push(
            diagnostics.at_key("lineage.namespace", "the namespace is empty; leave it out for the project's name"),
        );
    }
    if !(1..=60).contains(&lineage.timeout_seconds) {
        problems.push(diagnostics.at_key(
            "lineage.timeout_seconds",
            format!("expected between 1 and 60 seconds, got {}", lineage.timeout_seconds),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const HEAD: &str = "\
name: demo
reporting: { currency: EUR, timezone: Europe/Berlin }
warehouse:
  default: local
  targets:
    local: { type: duckdb, path: warehouse.duckdb }
";

    fn env(name: &str) -> Option<String> {
        (name == "HOOK").then(|| "https://hooks.slack.com/services/T0/B0/s3cr3tpath".to_owned())
    }

    fn load(tail: &str) -> Result<crate::ProjectConfig, String> {
        crate::parse(Path::new("mdp.yml"), &format!("{HEAD}{tail}"), &env).map_err(|e| e.to_string())
    }

    #[test]
    fn notifiers_and_lineage_load_with_defaults() {
        let config = load(
            "alerts:
  notifiers:
    - name: ops
      type: slack
      url: { env: SLACK_URL }
    - name: hook
      type: webhook
      url: http://alerts.internal:8080/mdp
      on: [run_failed, recovered]
      timeout_seconds: 3
    - name: pager
      type: command
      command: [./page.sh, --team, data]
lineage:
  url: http://localhost:5000/
  api_key: { env: OL_KEY }
",
        )
        .unwrap();
        let notifiers = &config.alerts.as_ref().unwrap().notifiers;
        assert_eq!(notifiers[0].kind, NotifierKind::Slack);
        assert_eq!(notifiers[0].url, Some(UrlRef::Secret(SecretRef::Env("SLACK_URL".into()))));
        assert_eq!(notifiers[0].on, AlertEvent::all());
        assert_eq!(notifiers[0].timeout_seconds, 10);
        assert_eq!(notifiers[1].on, [AlertEvent::RunFailed, AlertEvent::Recovered]);
        assert_eq!(notifiers[2].command, ["./page.sh", "--team", "data"]);
        let lineage = config.lineage.unwrap();
        assert_eq!(lineage.post_url().as_deref(), Some("http://localhost:5000/api/v1/lineage"));
        assert_eq!(lineage.timeout_seconds, 5);
    }

    #[test]
    fn mistakes_get_located_messages_that_never_echo_a_url() {
        let error = load("alerts:\n  notifiers:\n    - name: ops\n      type: slack\n      url: https://hooks.slack.com/services/T0/B0/inl1ne\n").unwrap_err();
        assert!(error.contains("mdp.yml:11:7: alerts.notifiers[0].url: this url carries a secret"), "{error}");
        assert!(!error.contains("inl1ne"), "{error}");
        // From the environment, a Slack url is fine: it is not committed.
        load("alerts:\n  notifiers:\n    - name: ops\n      type: slack\n      url: ${HOOK}\n").unwrap();

        let error = load("alerts:\n  notifiers:\n    - name: ops\n      type: webhook\n").unwrap_err();
        assert!(error.contains("alerts.notifiers[0].type: a webhook notifier needs `url:"), "{error}");
        let error =
            load("alerts:\n  notifiers:\n    - name: ops\n      type: command\n      command: []\n").unwrap_err();
        assert!(error.contains("needs `command: [program"), "{error}");
        let error = load("alerts:\n  notifiers:\n    - name: ops\n      type: email\n").unwrap_err();
        assert!(error.contains("unknown variant `email`, expected one of `webhook`, `slack`, `command`"), "{error}");
        let error = load(
            "alerts:\n  notifiers:\n    - name: ops\n      type: command\n      command: [x]\n      on: [run_fail]\n",
        )
        .unwrap_err();
        assert!(error.contains("unknown variant `run_fail`"), "{error}");
        let error = load("alerts:\n  notifiers:\n    - name: a\n      type: command\n      command: [x]\n    - name: a\n      type: command\n      command: [y]\n      timeout_seconds: 0\n")
            .unwrap_err();
        assert!(error.contains("alerts.notifiers[1].name: duplicate notifier name 'a'"), "{error}");
        assert!(error.contains("alerts.notifiers[1].timeout_seconds: expected between 1 and 300"), "{error}");
        let error = load("alerts:\n  notifiers:\n    - name: a\n      type: webhook\n      url: http://u:pw@h/x\n")
            .unwrap_err();
        assert!(error.contains("carries a secret") && !error.contains("pw@"), "{error}");
        let error =
            load("alerts:\n  notifiers:\n    - name: a\n      type: webhook\n      url: ftp://h/x\n").unwrap_err();
        assert!(error.contains("expected an http:// or https:// url"), "{error}");

        let error = load("lineage: { namespace: x }\n").unwrap_err();
        assert!(error.contains("lineage: say where events go"), "{error}");
        let error = load("lineage:\n  url: http://m:5000/?token=abc\n").unwrap_err();
        assert!(error.contains("lineage.url: this url carries a secret"), "{error}");
    }

    #[test]
    fn redaction_keeps_scheme_and_host_only() {
        assert_eq!(redact_url("https://hooks.slack.com/services/T0/B0/s3cr3t"), "https://hooks.slack.com/…");
        assert_eq!(redact_url("http://user:pw@127.0.0.1:8080/x?token=1"), "http://127.0.0.1:8080/…");
        assert_eq!(redact_url("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(redact_url("http://u:pw@host"), "http://host/…");
        assert_eq!(redact_url("not a url s3cr3t"), "<url>");
        let debug = format!("{:?}", UrlRef::Plain("https://h/secret-path".into()));
        assert!(!debug.contains("secret-path"), "{debug}");
    }
}
