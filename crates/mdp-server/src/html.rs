//! The shared layout and small pieces of the pages. Templates are `maud` macros: every value
//! interpolated into them is HTML-escaped, so user data (campaign names, check messages, errors)
//! never becomes markup. The only raw HTML is the lineage SVG the docs renderer builds (it escapes
//! its own text) and JSON embedded by [`json_script`], which escapes `<`, `>` and `&`.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use mdp_core::{RunStatus, TaskState};
use mdp_monitor::checks::CheckStatus;

use crate::actions::ActionState;
use crate::data::DataError;

/// The navigation: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/lineage", "Lineage"),
    ("/checks", "Checks"),
    ("/kpis", "KPIs"),
    ("/actions", "Actions"),
    ("/docs/", "Docs"),
];

/// A whole page: head, navigation, body. `refresh` reloads the page after that many seconds.
pub fn layout(title: &str, active: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · mdp" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top {
                    a.brand href="/" { "mdp" }
                    nav {
                        @for (href, label) in NAV {
                            a.active[*label == active] href=(href) { (label) }
                        }
                        a href="/metrics" { "Metrics" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                script src="/assets/app.js" defer {}
            }
        }
    }
}

/// An HTML response with a status.
pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// How a status looks: the colour of its badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Warn,
    Bad,
    Running,
    /// A word the page does not know (written by another version of mdp).
    Neutral,
}

impl Tone {
    /// The CSS class (`assets/app.css`).
    pub fn class(self) -> &'static str {
        match self {
            Tone::Ok => "ok",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
            Tone::Running => "running",
            Tone::Neutral => "neutral",
        }
    }
}

/// A status vocabulary the pages show: each word spelled by its enum, coloured here.
pub trait Status: Copy + std::str::FromStr {
    fn word(self) -> &'static str;
    fn tone(self) -> Tone;
}

impl Status for RunStatus {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            RunStatus::Running => Tone::Running,
            RunStatus::Success => Tone::Ok,
            RunStatus::Failed => Tone::Bad,
        }
    }
}

impl Status for TaskState {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            TaskState::Running => Tone::Running,
            TaskState::Success => Tone::Ok,
            TaskState::Failed => Tone::Bad,
            TaskState::UpstreamFailed | TaskState::Skipped => Tone::Warn,
        }
    }
}

impl Status for CheckStatus {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            CheckStatus::Pass => Tone::Ok,
            CheckStatus::Warn | CheckStatus::Skipped => Tone::Warn,
            CheckStatus::Fail | CheckStatus::Error => Tone::Bad,
        }
    }
}

impl Status for ActionState {
    fn word(self) -> &'static str {
        self.as_str()
    }
    fn tone(self) -> Tone {
        match self {
            ActionState::Running => Tone::Running,
            ActionState::Succeeded => Tone::Ok,
            ActionState::Failed => Tone::Bad,
        }
    }
}

fn badge_of(word: &str, tone: Tone) -> Markup {
    html! { span class={ "badge " (tone.class()) } { (word) } }
}

/// A status as a coloured badge.
pub fn badge(status: impl Status) -> Markup {
    badge_of(status.word(), status.tone())
}

/// A status word read back from the metadata in the vocabulary `S` (`runs.status`: [`RunStatus`],
/// `task_instances.state`: [`TaskState`], `check_results.status`: [`CheckStatus`]); a word `S` does not
/// know is shown as it is, neutral.
pub fn stored_badge<S: Status>(word: &str) -> Markup {
    match word.parse::<S>() {
        Ok(status) => badge(status),
        Err(_) => badge_of(word, Tone::Neutral),
    }
}

/// An incident's last status: its run's or its check's.
pub fn incident_status_badge(word: &str) -> Markup {
    match word.parse::<RunStatus>() {
        Ok(status) => badge(status),
        Err(_) => stored_badge::<CheckStatus>(word),
    }
}

/// An optional value, or a dash.
pub fn opt<T: std::fmt::Display>(value: Option<T>) -> Markup {
    match value {
        Some(v) => html! { (v) },
        None => html! { span.muted { "–" } },
    }
}

/// A ratio with two decimals, or a dash.
pub fn ratio(value: Option<f64>) -> Markup {
    opt(value.map(|v| format!("{v:.2}")))
}

/// A decimal as text, rounded to two places for display (the exact value in the title).
pub fn money(value: &rust_decimal::Decimal) -> Markup {
    let shown = group_thousands(&format!("{:.2}", value.round_dp(2)));
    html! { span title=(value) { (shown) } }
}

/// `1234567.89` → `1,234,567.89`.
pub fn group_thousands(number: &str) -> String {
    let (sign, digits) = number.strip_prefix('-').map_or(("", number), |d| ("-", d));
    let (int, frac) = digits.split_once('.').map_or((digits, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// JSON inside `<script type="application/json">`: `<`, `>` and `&` escaped so no value can close
/// the script element.
pub fn json_script(id: &str, value: &serde_json::Value) -> Markup {
    let json = value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026");
    html! { script type="application/json" id=(id) { (PreEscaped(json)) } }
}

/// The page shown when data cannot be read: a run writing (auto-refresh), nothing yet, or an error.
pub fn data_error(title: &str, active: &str, error: &DataError) -> Response {
    match error {
        DataError::Busy(why) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            layout(
                title,
                active,
                Some(3),
                html! {
                    div.notice.busy {
                        p { strong { "A run is writing to the warehouse; this page refreshes in a few seconds." } }
                        p.muted { (why) }
                    }
                },
            ),
        ),
        DataError::Empty(why) => page(
            StatusCode::OK,
            layout(title, active, None, html! { div.notice { p { (why) } p { a href="/actions" { "Actions" } } } }),
        ),
        DataError::Failed(why) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            layout(
                title,
                active,
                None,
                html! { div.notice.error { p { "Cannot read the warehouse:" } pre { (why) } } },
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_is_escaped_everywhere_it_is_shown() {
        let evil = "<script>alert('x')</script>";
        let page =
            layout(evil, "Overview", None, html! { td { (evil) } (stored_badge::<RunStatus>(evil)) }).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert"));
    }

    #[test]
    fn each_vocabulary_colours_its_own_words() {
        let class = |m: Markup| m.into_string();
        assert_eq!(class(badge(RunStatus::Failed)), r#"<span class="badge bad">failed</span>"#);
        assert_eq!(
            class(stored_badge::<TaskState>("upstream_failed")),
            r#"<span class="badge warn">upstream_failed</span>"#
        );
        assert_eq!(class(stored_badge::<CheckStatus>("pass")), r#"<span class="badge ok">pass</span>"#);
        assert_eq!(class(badge(ActionState::Succeeded)), r#"<span class="badge ok">succeeded</span>"#);
        assert_eq!(class(stored_badge::<RunStatus>("running")), r#"<span class="badge running">running</span>"#);
        // A check status is not a run status: shown as written, neutral.
        assert_eq!(class(stored_badge::<RunStatus>("pass")), r#"<span class="badge neutral">pass</span>"#);
        assert_eq!(class(incident_status_badge("warn")), r#"<span class="badge warn">warn</span>"#);
        assert_eq!(class(incident_status_badge("open")), r#"<span class="badge neutral">open</span>"#);
    }

    #[test]
    fn embedded_json_cannot_close_its_script_element() {
        let value = serde_json::json!({ "campaign": "</script><script>alert(1)</script>" });
        let markup = json_script("data", &value).into_string();
        assert_eq!(markup.matches("</script>").count(), 1, "{markup}");
        let inner = markup.trim_start_matches(|c| c != '>').trim_start_matches('>').trim_end_matches("</script>");
        let back: serde_json::Value = serde_json::from_str(inner).unwrap();
        assert_eq!(back, value, "the JSON still parses to the same value");
    }

    #[test]
    fn numbers_are_grouped_for_reading() {
        assert_eq!(group_thousands("1234567.89"), "1,234,567.89");
        assert_eq!(group_thousands("-1000"), "-1,000");
        assert_eq!(group_thousands("999.5"), "999.5");
    }
}
