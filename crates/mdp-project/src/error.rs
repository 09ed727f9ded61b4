//! What can go wrong when loading or creating a project. Every variant is for the user to act on.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::diagnostic::Diagnostic;
use crate::secret::SecretError;

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no mdp.yml in {}: run `mdp init {}` to create a project, or pass --project-dir", .dir.display(), .dir.display())]
    NotFound { dir: PathBuf },

    #[error("could not {action} {}: {source}", .path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },

    /// The project file has problems; every one found is listed, each with its file:line:column.
    #[error("{}", list_diagnostics(.file, .diagnostics))]
    Invalid { file: PathBuf, diagnostics: Vec<Diagnostic> },

    #[error("no warehouse target named '{name}'{suggestion}; the targets in mdp.yml are: {}", .available.join(", "))]
    UnknownTarget {
        name: String,
        available: Vec<String>,
        /// ` (did you mean 'prod'?)`, or empty.
        suggestion: String,
    },

    /// A connector spec of the project's `connectors/` folder has problems, each at its file:line.
    #[error("{} in connector specs:\n  {}\nhint: the spec format is in the README (\"Add a platform in an afternoon\"); `mdp connector test <platform>` tries one", if .0.0.len() == 1 { "1 problem".to_string() } else { format!("{} problems", .0.0.len()) }, .0.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Connectors(mdp_spec::SpecErrors),

    #[error("{what}: {source}")]
    Secret { what: String, source: SecretError },

    #[error("the Postgres url is not usable: expected postgres://user@host:5432/database")]
    UnusablePostgresUrl,

    #[error("{} already exists: not overwriting an existing project", .file.display())]
    AlreadyExists { file: PathBuf },

    #[error("cannot name a project '{name}': {reason}")]
    InvalidProjectName { name: String, reason: String },
}

fn list_diagnostics(file: &std::path::Path, diagnostics: &[Diagnostic]) -> String {
    let count = diagnostics.len();
    let mut text = format!(
        "{} in {}:",
        if count == 1 { "1 problem".to_owned() } else { format!("{count} problems") },
        file.display()
    );
    for diagnostic in diagnostics {
        let _ = write!(text, "\n  {diagnostic}");
    }
    text.push_str(
        "\nhint: fix every line above, then run the command again; `mdp init <dir>` writes a commented example mdp.yml",
    );
    text
}
