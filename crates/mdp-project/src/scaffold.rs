//! `mdp init`: writes a new project that loads without a single diagnostic.

use std::path::{Path, PathBuf};

use crate::error::ProjectError;
use crate::project::PROJECT_FILE_NAME;
use crate::values::Identifier;

/// The files of a new project: path relative to the project directory, and contents.
const FILES: &[(&str, &str)] = &[
    (PROJECT_FILE_NAME, include_str!("../templates/mdp.yml")),
    ("models/README.md", include_str!("../templates/models_README.md")),
    ("seeds/.gitkeep", ""),
    ("macros/.gitkeep", ""),
    ("tests/.gitkeep", ""),
    (".gitignore", include_str!("../templates/gitignore")),
];

/// Creates a project named `name` in `dir` (created if needed) and returns the files written.
///
/// Refuses a directory that already has an `mdp.yml`; other files that already exist (a `.gitignore`,
/// say) are left as they are and not listed. No secret value is ever written.
pub fn scaffold(dir: &Path, name: &str) -> Result<Vec<PathBuf>, ProjectError> {
    name.parse::<Identifier>()
        .map_err(|error| ProjectError::InvalidProjectName { name: name.to_owned(), reason: error.to_string() })?;
    let project_file = dir.join(PROJECT_FILE_NAME);
    if project_file.exists() {
        return Err(ProjectError::AlreadyExists { file: project_file });
    }
    let mut written = Vec::new();
    for (relative_path, contents) in FILES {
        let path = dir.join(relative_path);
        if path.exists() {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| ProjectError::Io {
                action: "create directory",
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let contents = contents.replace("{{name}}", name);
        std::fs::write(&path, contents).map_err(|source| ProjectError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// A valid project name derived from a directory name: `My Marketing-2026` → `my_marketing_2026`.
pub fn project_name_for(dir: &Path) -> String {
    let base = dir
        .canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|character| if character.is_ascii_alphanumeric() { character.to_ascii_lowercase() } else { '_' })
        .collect();
    name = name.trim_matches('_').to_owned();
    if !name.starts_with(|first: char| first.is_ascii_lowercase()) {
        name = format!("mdp_{name}");
    }
    name.truncate(63);
    name.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Project;

    #[test]
    fn a_new_project_loads_without_diagnostics_and_holds_no_inline_credential() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("my-marketing");
        let written = scaffold(&dir, "my_marketing").unwrap();
        assert_eq!(written.len(), FILES.len());

        // No variable is set: the example source is disabled and the Postgres target commented out.
        let project = Project::load_with_env(&dir, &|_: &str| None).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(project.config.name.as_str(), "my_marketing");
        assert_eq!(project.config.reporting.currency.as_str(), "USD");
        assert_eq!(project.target(None).unwrap().0, "local");
        assert_eq!(project.enabled_sources().count(), 0);
        assert_eq!(project.config.sources[0].credentials.len(), 2);

        let text = std::fs::read_to_string(dir.join("mdp.yml")).unwrap();
        for line in text.lines().filter(|line| !line.trim_start().starts_with('#')) {
            if let Some((key, value)) = line.split_once(": ") {
                if key.contains("token") || key.contains("password") || key.contains("secret") {
                    assert!(value.trim_start().starts_with("{ env: "), "inline credential: {line}");
                }
            }
        }
        let gitignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
        for ignored in
            ["warehouse.duckdb", "warehouse.duckdb.wal", "*.mdp-lock", "target/", "logs/", ".env", "secrets/"]
        {
            assert!(gitignore.lines().any(|line| line == ignored), "{ignored}");
        }
    }

    #[test]
    fn an_existing_project_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".gitignore"), "mine\n").unwrap();
        let written = scaffold(dir.path(), "demo").unwrap();
        assert!(!written.contains(&dir.path().join(".gitignore")));
        assert_eq!(std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(), "mine\n");

        let error = scaffold(dir.path(), "demo").unwrap_err();
        assert!(error.to_string().ends_with("mdp.yml already exists: not overwriting an existing project"), "{error}");
        assert!(matches!(scaffold(dir.path(), "Bad-Name"), Err(ProjectError::InvalidProjectName { .. })));
    }

    #[test]
    fn project_names_from_directories() {
        assert_eq!(project_name_for(Path::new("/x/My Marketing-2026")), "my_marketing_2026");
        assert_eq!(project_name_for(Path::new("/x/2026")), "mdp_2026");
        assert_eq!(project_name_for(Path::new("/x/acme")), "acme");
    }
}
