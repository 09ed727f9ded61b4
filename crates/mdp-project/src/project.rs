//! Loading a project: read `mdp.yml`, interpolate, parse, validate.

use std::path::{Path, PathBuf};

use crate::config::{ProjectConfig, SourceConfig};
use crate::diagnostic::{closest, DiagnosticBuilder};
use crate::env::{EnvLookup, ProcessEnv};
use crate::error::ProjectError;
use crate::interpolate::interpolate;
use crate::locate::Outline;
use crate::target::TargetConfig;
use crate::validate::validate;

/// The project file's name inside a project directory.
pub const PROJECT_FILE_NAME: &str = "mdp.yml";

/// The folder of a project's own connector specs (`connectors/<platform>.yml`), beside mdp.yml.
pub const CONNECTORS_DIR: &str = "connectors";

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory, as given (relative paths stay relative).
    pub root: PathBuf,
    /// The project file, `root/mdp.yml` (just `mdp.yml` when `root` is `.`).
    pub file: PathBuf,
    pub config: ProjectConfig,
}

impl Project {
    /// Loads `dir/mdp.yml`, interpolating `${VAR}` from the process environment.
    pub fn load(dir: impl AsRef<Path>) -> Result<Project, ProjectError> {
        Project::load_with_env(dir, &ProcessEnv)
    }

    /// [`Project::load`] with an injected environment.
    pub fn load_with_env(dir: impl AsRef<Path>, env: &dyn EnvLookup) -> Result<Project, ProjectError> {
        let root = dir.as_ref().to_path_buf();
        let file = project_file_in(&root);
        let raw_text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProjectError::NotFound { dir: root })
            }
            Err(source) => return Err(ProjectError::Io { action: "read", path: file, source }),
        };
        // A project's own platforms first: mdp.yml may name them.
        mdp_spec::load_dir(&root.join(CONNECTORS_DIR)).map_err(ProjectError::Connectors)?;
        let config = parse(&file, &raw_text, env)?;
        Ok(Project { root, file, config })
    }

    /// The target named `name`, or the default target when `name` is `None`. Returns its name too.
    pub fn target(&self, name: Option<&str>) -> Result<(&str, &TargetConfig), ProjectError> {
        let name = name.unwrap_or(self.config.warehouse.default.as_str());
        self.config.warehouse.targets.get_key_value(name).map(|(name, target)| (name.as_str(), target)).ok_or_else(
            || {
                let available: Vec<String> = self.config.warehouse.targets.keys().map(ToString::to_string).collect();
                let suggestion = closest(name, available.iter().map(String::as_str))
                    .map(|closest| format!(" (did you mean '{closest}'?)"))
                    .unwrap_or_default();
                ProjectError::UnknownTarget { name: name.to_owned(), available, suggestion }
            },
        )
    }

    /// The sources to ingest, in file order.
    pub fn enabled_sources(&self) -> impl Iterator<Item = &SourceConfig> {
        self.config.sources.iter().filter(|source| source.enabled)
    }

    /// The source named `name`, enabled or not.
    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.config.sources.iter().find(|source| source.name.as_str() == name)
    }
}

fn project_file_in(dir: &Path) -> PathBuf {
    // `mdp.yml:3:1: ...` reads better than `./mdp.yml:3:1: ...` in the common case.
    if dir.as_os_str().is_empty() || dir == Path::new(".") {
        PathBuf::from(PROJECT_FILE_NAME)
    } else {
        dir.join(PROJECT_FILE_NAME)
    }
}

/// Interpolates, parses and validates the text of a project file; `file` is used in diagnostics only.
pub fn parse(file: &Path, raw_text: &str, env: &dyn EnvLookup) -> Result<ProjectConfig, ProjectError> {
    let invalid = |diagnostics| ProjectError::Invalid { file: file.to_path_buf(), diagnostics };
    mdp_spec::register_builtin();
    let outline = Outline::new(raw_text);
    let diagnostics = DiagnosticBuilder::new(file.to_path_buf(), &outline);

    let interpolated = interpolate(raw_text, env).map_err(|errors| {
        invalid(errors.into_iter().map(|error| diagnostics.for_interpolation_error(error)).collect())
    })?;
    let has_content =
        interpolated.text.lines().any(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'));
    if !has_content {
        return Err(invalid(vec![diagnostics.at_key(
            "",
            "the project file is empty; it needs at least `name`, `reporting` and `warehouse` (`mdp init <dir>` writes an example)",
        )]));
    }
    let config: ProjectConfig = serde_yaml::from_str(&interpolated.text)
        .map_err(|error| invalid(vec![diagnostics.for_yaml_error(&error, &interpolated)]))?;

    let problems = validate(&config, raw_text, &outline, &diagnostics);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(invalid(problems))
    }
}
