//! The shared layout and small pieces of the pages. Templates are `maud` macros: every value
//! interpolated into them is HTML-escaped, so user data (campaign names, check messages, errors)
//! never becomes markup. The only raw HTML is the lineage SVG the docs renderer builds (it escapes
//! its own text) and JSON embedded by [`json_script`], which escapes `<`, `>` and `&`.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

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

/// The CSS class of a status word.
pub fn status_class(status: &str) -> &'static str {
    match status {
        "success" | "succeeded" | "pass" | "passed" | "ok" => "ok",
        "warn" | "warning" | "skipped" | "upstream_failed" => "warn",
        "fail" | "failed" | "error" => "bad",
        "running" => "running",
        _ => "neutral",
    }
}

pub fn badge(status: &str) -> Markup {
    html! { span class={ "badge " (status_class(status)) } { (status) } }
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
pub fn money(value: &str) -> Markup {
    let shown = value.parse::<f64>().map(|v| group_thousands(&format!("{v:.2}"))).unwrap_or_else(|_| value.to_string());
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
        let page = layout(evil, "Overview", None, html! { td { (evil) } (badge(evil)) }).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert"));
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
