//! dbt packages: what `packages.yml` (or `dependencies.yml`) declares, what is installed in
//! `dbt_packages/` (`packages-install-path`), and `mdp deps` for `local:` packages.
//!
//! mdp reads packages as `dbt deps` leaves them and needs no network: every folder of the install
//! path is a package, and a `local:` package that is not installed there is read where it is.
//! Hub, git, tarball and private packages must be installed (by `dbt deps`, or copied); one that is
//! declared but missing is an error naming the packages.yml line, as dbt's "run dbt deps".
//! Packages' own `packages.yml` are not read: `dbt deps` installs transitive dependencies flat into
//! the root project's install path, and mdp reads them there.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, TransformError};
use crate::project::{yaml_to_json, DbtProject};

/// One entry of `packages:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// `local: path` (relative to the project).
    Local(PathBuf),
    /// `package: namespace/name` from the dbt hub.
    Hub(String),
    /// `git: url` (or `private: org/repo`), with its `subdirectory:`.
    Git { url: String, subdirectory: Option<String> },
    /// `tarball: url` with its `name:`.
    Tarball { url: String, name: Option<String> },
}

/// A declared package and where it was declared.
#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub source: PackageSource,
    pub file: PathBuf,
    pub line: usize,
}

impl PackageSpec {
    /// The package's name as its folder in the install path is likely named (hub: the part after
    /// `/`; git: the repository; local: the folder), for matching and messages.
    pub fn likely_name(&self) -> String {
        let last = |s: &str| {
            s.trim_end_matches('/').rsplit(['/', ':']).next().unwrap_or(s).trim_end_matches(".git").to_string()
        };
        match &self.source {
            PackageSource::Local(path) => last(&path.to_string_lossy()),
            PackageSource::Hub(name) => last(name),
            PackageSource::Git { url, subdirectory } => last(subdirectory.as_deref().unwrap_or(url)),
            PackageSource::Tarball { url, name } => name.clone().unwrap_or_else(|| last(url)),
        }
    }

    fn described(&self) -> String {
        match &self.source {
            PackageSource::Local(path) => format!("local: {}", path.display()),
            PackageSource::Hub(name) => format!("package: {name}"),
            PackageSource::Git { url, .. } => format!("git: {url}"),
            PackageSource::Tarball { url, .. } => format!("tarball: {url}"),
        }
    }

    fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// A package to parse beside the project: its project, and the path its files are shown under
/// (relative to the root project: `dbt_packages/dbt_utils`, or a `local:` path).
#[derive(Debug, Clone)]
pub struct InstalledPackage {
    pub project: DbtProject,
    pub shown_root: PathBuf,
}

/// The packages the project declares in `packages.yml` (else `dependencies.yml`); none when neither exists.
pub fn declared(root: &DbtProject) -> Result<Vec<PackageSpec>> {
    for name in ["packages.yml", "dependencies.yml"] {
        let file = root.root.join(name);
        if !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|e| TransformError::io(&file, e))?;
        let value = yaml_to_json(&file, &text)?;
        let entries = match value.get("packages") {
            None | Some(Value::Null) => {
                if name == "dependencies.yml" {
                    continue;
                }
                return Ok(Vec::new());
            }
            Some(Value::Array(entries)) => entries.clone(),
            Some(_) => return Err(TransformError::config(&file, "`packages:` must be a list of packages")),
        };
        let mut specs = Vec::new();
        let mut search_from = 0;
        for entry in &entries {
            let (source, key_value) = spec_source(&file, entry)?;
            // The entry's line: the first line at or after the previous entry's that names its value.
            let line = text
                .lines()
                .enumerate()
                .skip(search_from)
                .find(|(_, l)| l.contains(key_value.as_str()))
                .map(|(i, _)| i)
                .unwrap_or(search_from);
            search_from = line + 1;
            specs.push(PackageSpec { source, file: PathBuf::from(name), line: line + 1 });
        }
        return Ok(specs);
    }
    Ok(Vec::new())
}

fn spec_source(file: &Path, entry: &Value) -> Result<(PackageSource, String)> {
    let get = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(path) = get("local") {
        return Ok((PackageSource::Local(PathBuf::from(&path)), path));
    }
    if let Some(name) = get("package") {
        return Ok((PackageSource::Hub(name.clone()), name));
    }
    if let Some(url) = get("git").or_else(|| get("private")) {
        return Ok((PackageSource::Git { url: url.clone(), subdirectory: get("subdirectory") }, url));
    }
    if let Some(url) = get("tarball") {
        return Ok((PackageSource::Tarball { url: url.clone(), name: get("name") }, url));
    }
    Err(TransformError::config(
        file,
        format!("cannot read package entry {entry}: expected `local:`, `package:`, `git:`, `private:` or `tarball:`"),
    ))
}

/// The install path (`packages-install-path`, default `dbt_packages`), absolute.
pub fn install_dir(root: &DbtProject) -> PathBuf {
    root.root.join(&root.packages_install_path)
}

/// The packages to parse beside `root`: every package installed in its install path, and `local:`
/// packages that are not installed, read in place. Fails when a declared package is missing, a
/// folder of the install path is not a dbt project, or two packages share a name.
pub fn load(root: &DbtProject) -> Result<Vec<InstalledPackage>> {
    let specs = declared(root)?;
    let dir = install_dir(root);
    let mut packages: Vec<InstalledPackage> = Vec::new();
    if dir.is_dir() {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| TransformError::io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(['_', '.'])))
            .collect();
        folders.sort();
        for folder in folders {
            let folder_name = folder.file_name().expect("a folder").to_string_lossy().into_owned();
            if !folder.join("dbt_project.yml").is_file() {
                return Err(TransformError::config(
                    &folder,
                    format!(
                        "{}/{folder_name} is not a dbt package (no dbt_project.yml); remove it, or run `dbt deps` again",
                        root.packages_install_path
                    ),
                ));
            }
            let project = DbtProject::load(&folder)?;
            packages.push(InstalledPackage {
                project,
                shown_root: Path::new(&root.packages_install_path).join(&folder_name),
            });
        }
    }
    // The names of the `local:` packages (read once here), to tell them from installed remote ones.
    let mut local_names: Vec<String> = Vec::new();
    for spec in &specs {
        let PackageSource::Local(path) = &spec.source else { continue };
        let folder = root.root.join(path);
        if !folder.join("dbt_project.yml").is_file() {
            return Err(TransformError::config(
                &spec.file,
                format!(
                    "{}: local package {} has no dbt_project.yml (looked in {})",
                    spec.location(),
                    path.display(),
                    folder.display()
                ),
            ));
        }
        let project = DbtProject::load(&folder)?;
        local_names.push(project.name.clone());
        if !packages.iter().any(|p| p.project.name == project.name) {
            packages.push(InstalledPackage { project, shown_root: path.clone() });
        }
    }
    // Declared but not installed (dbt: "run dbt deps").
    let installed: Vec<String> = packages.iter().map(|p| p.project.name.clone()).collect();
    let remote: Vec<&PackageSpec> = specs.iter().filter(|s| !matches!(s.source, PackageSource::Local(_))).collect();
    let remote_installed = packages.iter().filter(|p| !local_names.contains(&p.project.name)).count();
    for spec in &remote {
        let named = matches!(spec.source, PackageSource::Hub(_));
        if (named && !installed.contains(&spec.likely_name())) || (!named && remote.len() > remote_installed) {
            return Err(TransformError::config(
                &spec.file,
                format!(
                    "{}: package `{}` is not installed in {}/: run `dbt deps` to install hub and git packages (mdp \
                     installs `local:` packages with `mdp deps`, and has no network client for the others), or copy \
                     the package there",
                    spec.location(),
                    spec.described(),
                    root.packages_install_path
                ),
            ));
        }
    }
    for (i, package) in packages.iter().enumerate() {
        if package.project.name == root.name {
            return Err(TransformError::config(
                package.shown_root.join("dbt_project.yml"),
                format!("package `{}` has the root project's name; packages need names of their own", root.name),
            ));
        }
        if let Some(other) = packages[..i].iter().find(|p| p.project.name == package.project.name) {
            return Err(TransformError::config(
                package.shown_root.join("dbt_project.yml"),
                format!(
                    "two packages are named `{}`: {} and {}; remove one",
                    package.project.name,
                    other.shown_root.display(),
                    package.shown_root.display()
                ),
            ));
        }
    }
    Ok(packages)
}

/// What `mdp deps` did for one declared package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepOutcome {
    /// A `local:` package linked (or copied) into the install path.
    Installed { name: String, from: PathBuf },
    /// Already in the install path.
    UpToDate { name: String },
    /// A hub/git/tarball package that is not installed: mdp cannot fetch it.
    NeedsDbtDeps { spec: String, location: String },
}

/// `mdp deps`: install the `local:` packages into the install path (a symlink where the system
/// allows, as `dbt deps` does, else a copy), and report the others.
pub fn install_local(root: &DbtProject) -> Result<Vec<DepOutcome>> {
    let specs = declared(root)?;
    let dir = install_dir(root);
    let mut outcomes = Vec::new();
    for spec in &specs {
        match &spec.source {
            PackageSource::Local(path) => {
                let folder = root.root.join(path);
                let project = DbtProject::load(&folder).map_err(|e| {
                    TransformError::config(
                        &spec.file,
                        format!("{}: local package {}: {e}", spec.location(), path.display()),
                    )
                })?;
                let dest = dir.join(&project.name);
                if dest.join("dbt_project.yml").is_file() {
                    outcomes.push(DepOutcome::UpToDate { name: project.name });
                    continue;
                }
                std::fs::create_dir_all(&dir).map_err(|e| TransformError::io(&dir, e))?;
                let absolute = folder.canonicalize().map_err(|e| TransformError::io(&folder, e))?;
                link_or_copy(&absolute, &dest)?;
                outcomes.push(DepOutcome::Installed { name: project.name, from: path.clone() });
            }
            _ => {
                let name = spec.likely_name();
                if dir.join(&name).join("dbt_project.yml").is_file() {
                    outcomes.push(DepOutcome::UpToDate { name });
                } else {
                    outcomes.push(DepOutcome::NeedsDbtDeps { spec: spec.described(), location: spec.location() });
                }
            }
        }
    }
    Ok(outcomes)
}

fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    #[cfg(unix)]
    if std::os::unix::fs::symlink(from, to).is_ok() {
        return Ok(());
    }
    copy_dir(from, to)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| TransformError::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| TransformError::io(from, e))? {
        let entry = entry.map_err(|e| TransformError::io(from, e))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| TransformError::io(&path, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, DbtProject) {
        // The project in dir/project, so that `../shared` stays inside the temporary folder.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let project = DbtProject::load(&root).unwrap();
        (dir, project)
    }

    #[test]
    fn installed_and_local_packages_are_found_and_missing_ones_named() {
        let (_dir, root) = project(&[
            ("dbt_project.yml", "name: shop\n"),
            (
                "packages.yml",
                "packages:\n  - package: dbt-labs/dbt_utils\n    version: [\">=1.0.0\"]\n  - local: ../shared/vendor\n",
            ),
            ("dbt_packages/dbt_utils/dbt_project.yml", "name: dbt_utils\n"),
            ("../shared/vendor/dbt_project.yml", "name: vendor\n"),
        ]);
        let specs = declared(&root).unwrap();
        assert_eq!(specs[0].line, 2);
        assert_eq!(specs[1].line, 4);
        assert_eq!(specs[0].likely_name(), "dbt_utils");
        let names: Vec<String> = load(&root).unwrap().into_iter().map(|p| p.project.name).collect();
        assert_eq!(names, ["dbt_utils", "vendor"]);

        // A hub package that is not installed: the line and what to do.
        let (_dir, root) = project(&[
            ("dbt_project.yml", "name: shop\npackages-install-path: deps\n"),
            ("packages.yml", "packages:\n  - package: calogica/dbt_expectations\n    version: 0.10.0\n"),
        ]);
        let err = load(&root).unwrap_err().to_string();
        assert!(
            err.contains("packages.yml:2") && err.contains("not installed in deps/") && err.contains("dbt deps"),
            "{err}"
        );

        // A folder that is not a package.
        let (_dir, root) = project(&[("dbt_project.yml", "name: shop\n"), ("dbt_packages/stray/readme.md", "x")]);
        let err = load(&root).unwrap_err().to_string();
        assert!(err.contains("dbt_packages/stray is not a dbt package"), "{err}");
    }

    #[test]
    fn deps_links_local_packages_and_reports_the_rest() {
        let (dir, root) = project(&[
            ("dbt_project.yml", "name: shop\n"),
            ("packages.yml", "packages:\n  - local: pkgs/vendor\n  - git: https://github.com/org/dbt-things.git\n"),
            ("pkgs/vendor/dbt_project.yml", "name: vendor\n"),
            ("pkgs/vendor/macros/m.sql", "{% macro m() %}1{% endmacro %}"),
        ]);
        let outcomes = install_local(&root).unwrap();
        assert_eq!(outcomes[0], DepOutcome::Installed { name: "vendor".into(), from: "pkgs/vendor".into() });
        assert!(matches!(&outcomes[1], DepOutcome::NeedsDbtDeps { location, .. } if location == "packages.yml:3"));
        assert!(dir.path().join("project/dbt_packages/vendor/macros/m.sql").is_file());
        assert_eq!(install_local(&root).unwrap()[0], DepOutcome::UpToDate { name: "vendor".into() });
    }
}
