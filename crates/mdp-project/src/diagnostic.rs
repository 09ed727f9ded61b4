//! A problem in the project file, with the place to fix it.

use std::fmt;
use std::path::PathBuf;

use crate::interpolate::{Interpolated, InterpolationError};
use crate::locate::Outline;

/// One problem in the project file, e.g.
/// `mdp.yml:12:7: sources[0].lookback_days: expected a number of days between 0 and 400, got 500`.
///
/// `line` and `column` are 1-based; `key` is the path of the offending key (`sources[0].lookback_days`),
/// empty when the problem is not about one key (a YAML syntax error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(formatter, "{}: ", self.key)?;
        }
        formatter.write_str(&self.message)
    }
}

/// Builds diagnostics for one file, locating keys in its raw text.
pub(crate) struct DiagnosticBuilder<'a> {
    file: PathBuf,
    outline: &'a Outline,
}

impl<'a> DiagnosticBuilder<'a> {
    pub(crate) fn new(file: PathBuf, outline: &'a Outline) -> Self {
        DiagnosticBuilder { file, outline }
    }

    /// A problem with the value at `key`, located where the key (or its closest ancestor) is written.
    pub(crate) fn at_key(&self, key: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        let key = key.into();
        let position = self.outline.locate(&key);
        Diagnostic {
            file: self.file.clone(),
            line: position.map_or(1, |position| position.line),
            column: position.map_or(1, |position| position.column),
            key,
            message: message.into(),
        }
    }

    pub(crate) fn for_interpolation_error(&self, error: InterpolationError) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: error.line,
            column: error.column,
            key: self.outline.path_at_line(error.line).unwrap_or_default().to_owned(),
            message: error.message,
        }
    }

    /// Turns serde_yaml's error, whose text is `path: message at line L column C`, into a diagnostic
    /// located in the raw (uninterpolated) text.
    pub(crate) fn for_yaml_error(&self, error: &serde_yaml::Error, interpolated: &Interpolated) -> Diagnostic {
        let mut text = error.to_string();
        let location = error.location();
        if let Some(location) = &location {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            if let Some(position) = text.find(&suffix) {
                text.replace_range(position..position + suffix.len(), "");
            }
        }
        let (mut key, mut message) = match text.split_once(": ") {
            // Paths never contain spaces (our keys are identifiers); messages always do before a colon.
            Some((path, message)) if !path.contains(' ') && !path.is_empty() => (path.to_owned(), message.to_owned()),
            _ => (String::new(), text),
        };
        // serde names Rust types (`expected struct ReportingConfig`); users wrote YAML.
        if let Some(start) = message.find("expected struct ") {
            let name_start = start + "expected struct ".len();
            let name_end = message[name_start..]
                .find(|character: char| !character.is_alphanumeric())
                .map_or(message.len(), |end| name_start + end);
            message.replace_range(start..name_end, "expected a mapping of keys to values");
        }
        let mut line = location.as_ref().map_or(1, serde_yaml::Location::line);
        let mut column =
            location.as_ref().map_or(1, |location| interpolated.raw_column(location.line(), location.column()));
        // Point at the misspelled key itself rather than at its mapping, and name it.
        if let Some(unknown) = backticked_after(&message, "unknown field `").map(str::to_owned) {
            let unknown_key = if key.is_empty() { unknown.clone() } else { format!("{key}.{unknown}") };
            if let Some(position) = self.outline.find(&unknown_key) {
                line = position.line;
                column = position.column;
            }
            if let Some(suggestion) = closest_expected(&unknown, &message) {
                message.push_str(&format!(" (did you mean `{suggestion}`?)"));
            }
            key = unknown_key;
        }
        // Errors raised after serde buffered a value (tagged enums) carry no location: find the key.
        if location.is_none() && !key.is_empty() {
            if let Some(position) = self.outline.locate(&key) {
                line = position.line;
                column = position.column;
            }
        }
        Diagnostic { file: self.file.clone(), line, column, key, message }
    }
}

/// The text between `prefix` and the next backtick.
fn backticked_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let start = message.find(prefix)? + prefix.len();
    let length = message[start..].find('`')?;
    Some(&message[start..start + length])
}

/// The closest of the backticked names after "expected" in a serde message, if close enough.
fn closest_expected<'m>(given: &str, message: &'m str) -> Option<&'m str> {
    let (_, expected) = message.split_once("expected")?;
    closest(given, expected.split('`').skip(1).step_by(2))
}

/// The candidate closest to `given`, if it is close enough to be a plausible typo.
pub(crate) fn closest<'c>(given: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(given, candidate), candidate))
        .filter(|(similarity, _)| *similarity > 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, candidate)| candidate)
}
