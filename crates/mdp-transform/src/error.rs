//! Errors of the transformation engine, each saying where (file:line:column or node) and what to do.

use std::path::PathBuf;

use crate::graph::Cycle;

pub type Result<T, E = TransformError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// A project or profile file is missing or wrong.
    #[error("{file}: {message}")]
    Config { file: PathBuf, message: String },

    /// A YAML file does not parse.
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Yaml { file: PathBuf, line: usize, column: usize, message: String },

    /// A Jinja template does not parse or fails while rendering.
    #[error("{file}:{line}:{column}: {message}")]
    Jinja { file: String, line: usize, column: usize, message: String },

    /// `ref()` names a model or seed that does not exist.
    #[error("{file}: `{node}` refers to `{target}`, which is not a model or seed of this project{}", hint(.suggestion))]
    UnknownRef { file: PathBuf, node: String, target: String, suggestion: Option<String> },

    /// `source()` names a source table not declared in any properties file.
    #[error("{file}: `{node}` uses source('{source_name}', '{table}'), which is not declared in a sources: block of a .yml file{}", hint(.suggestion))]
    UnknownSource { file: PathBuf, node: String, source_name: String, table: String, suggestion: Option<String> },

    /// `ref()` points at a node switched off with `enabled: false`.
    #[error(
        "{file}: `{node}` refers to `{target}`, which is disabled (enabled: false); enable it or remove the reference"
    )]
    DisabledRef { file: PathBuf, node: String, target: String },

    /// Two nodes would be the same thing.
    #[error("two {kind}s are named `{name}`: {first} and {second}; rename one of them")]
    Duplicate { kind: &'static str, name: String, first: PathBuf, second: PathBuf },

    /// The graph has a cycle.
    #[error("dependency cycle: {0}; a model cannot depend on itself, directly or through others")]
    Cycle(Cycle),

    /// A seed file cannot be read.
    #[error(transparent)]
    Seed(#[from] crate::seed::SeedError),

    /// The selection syntax is wrong.
    #[error(transparent)]
    Select(#[from] crate::selector::SelectError),

    /// Something the engine does not support (yet), said plainly.
    #[error("{file}: {what} is not supported by mdp: {why}")]
    Unsupported { file: PathBuf, what: String, why: String },

    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

impl TransformError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TransformError::Io { path: path.into(), source }
    }

    pub(crate) fn config(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        TransformError::Config { file: file.into(), message: message.into() }
    }

    /// A minijinja error with the template's file, line and column.
    pub(crate) fn jinja(err: &minijinja::Error, sources: &dyn Fn(&str) -> Option<String>) -> Self {
        let file = err.name().unwrap_or("<template>").to_string();
        let line = err.line().unwrap_or(0);
        let column = match (err.range(), sources(&file)) {
            (Some(range), Some(text)) => {
                let start = range.start.min(text.len());
                let line_start = text[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
                text[line_start..start].chars().count() + 1
            }
            _ => 1,
        };
        let mut message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        // Errors raised inside a called macro carry the macro's location as their cause.
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            if let Some(j) = inner.downcast_ref::<minijinja::Error>() {
                message.push_str(&format!(
                    "\n  caused by: {}:{}: {}",
                    j.name().unwrap_or("?"),
                    j.line().unwrap_or(0),
                    j.detail().unwrap_or(&j.kind().to_string())
                ));
            } else {
                message.push_str(&format!("\n  caused by: {inner}"));
            }
            source = inner.source();
        }
        // Macros are defined under a private prefix in their file's template (jinja.rs): not the user's name.
        let message = message.replace("__mdp_m_", "");
        TransformError::Jinja { file, line, column, message }
    }
}
