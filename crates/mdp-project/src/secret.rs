//! Credentials: where the project file says to find them, and the values once found.
//!
//! The project file is committed to version control, so it only ever *names* a secret's location
//! (`{ env: VAR }` or `{ file: path }`); a plain string is rejected. Resolved values are wrapped in
//! [`Secret`], whose `Debug` and `Display` print `***`, so they cannot end up in logs by accident.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::env::{is_valid_env_var_name, EnvLookup, ProcessEnv};

/// Where to find a secret: `{ env: NAME }` or `{ file: PATH }` (relative to the project directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

/// A secret value. Printing it, with `{}` or `{:?}`, shows `***`; use [`Secret::expose_secret`] at the
/// single place the value is sent.
#[derive(Clone)]
pub struct Secret(String);

/// A secret that could not be read. Says where it was looked for, never what it contains.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set")]
    EnvNotSet { name: String },
    #[error("environment variable {name} is set but empty")]
    EnvEmpty { name: String },
    #[error("secret file {path} does not exist")]
    FileNotFound { path: PathBuf },
    #[error("secret file {path} could not be read: {source}")]
    FileUnreadable { path: PathBuf, source: std::io::Error },
    #[error("secret file {path} is empty")]
    FileEmpty { path: PathBuf },
}

/// The one message for a credential written inline.
pub(crate) const INLINE_SECRET_MESSAGE: &str =
    "credentials are never written inline; reference them as { env: VAR_NAME } or { file: path }";

impl SecretRef {
    /// Where the secret is looked up, for messages: `env GOOGLE_ADS_ACCESS_TOKEN` or `file secrets/x`.
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env {name}"),
            SecretRef::File(path) => format!("file {}", path.display()),
        }
    }

    /// Reads the secret from the process environment or from a file relative to `project_root`.
    pub fn resolve(&self, project_root: &Path) -> Result<Secret, SecretError> {
        self.resolve_with_env(project_root, &ProcessEnv)
    }

    /// [`SecretRef::resolve`] with an injected environment.
    pub fn resolve_with_env(&self, project_root: &Path, env: &dyn EnvLookup) -> Result<Secret, SecretError> {
        match self {
            SecretRef::Env(name) => match env.var(name) {
                None => Err(SecretError::EnvNotSet { name: name.clone() }),
                Some(value) if value.trim().is_empty() => Err(SecretError::EnvEmpty { name: name.clone() }),
                Some(value) => Ok(Secret(value)),
            },
            SecretRef::File(relative) => {
                let path = project_root.join(relative);
                let contents = std::fs::read_to_string(&path).map_err(|source| match source.kind() {
                    std::io::ErrorKind::NotFound => SecretError::FileNotFound { path: path.clone() },
                    _ => SecretError::FileUnreadable { path: path.clone(), source },
                })?;
                // Files written by editors and `echo` end with a newline that is not part of the secret.
                let value = contents.trim();
                if value.is_empty() {
                    return Err(SecretError::FileEmpty { path });
                }
                Ok(Secret(value.to_owned()))
            }
        }
    }
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("{ env: VAR_NAME } or { file: path }")
    }

    // Any scalar here is a credential written inline. Its value is never echoed back.
    fn visit_str<E: de::Error>(self, _value: &str) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET_MESSAGE))
    }

    fn visit_u64<E: de::Error>(self, _value: u64) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET_MESSAGE))
    }

    fn visit_i64<E: de::Error>(self, _value: i64) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET_MESSAGE))
    }

    fn visit_f64<E: de::Error>(self, _value: f64) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET_MESSAGE))
    }

    fn visit_bool<E: de::Error>(self, _value: bool) -> Result<SecretRef, E> {
        Err(E::custom(INLINE_SECRET_MESSAGE))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let wrong_shape = || de::Error::custom("expected exactly one of { env: VAR_NAME } or { file: path }");
        let key: String = map.next_key()?.ok_or_else(wrong_shape)?;
        let secret = match key.as_str() {
            "env" => {
                let name: String = map.next_value()?;
                if !is_valid_env_var_name(&name) {
                    return Err(de::Error::custom(format!(
                        "'{name}' is not an environment variable name (letters, digits and _, not starting with a digit)"
                    )));
                }
                SecretRef::Env(name)
            }
            "file" => {
                let path: PathBuf = map.next_value()?;
                if path.as_os_str().is_empty() {
                    return Err(de::Error::custom("the secret file path is empty"));
                }
                SecretRef::File(path)
            }
            other => {
                return Err(de::Error::custom(format!(
                    "unknown secret source `{other}`; expected {{ env: VAR_NAME }} or {{ file: path }}"
                )))
            }
        };
        if map.next_key::<String>()?.is_some() {
            return Err(wrong_shape());
        }
        Ok(secret)
    }
}

impl Secret {
    /// Wraps a value obtained elsewhere (e.g. a connection string assembled from parts).
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself. Call it only where the secret is sent, never to log or display it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t".to_owned()),
            "BLANK" => Some("  ".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn secrets_never_print_their_value() {
        let secret = Secret::new("s3cr3t".to_owned());
        assert_eq!(format!("{secret} {secret:?} {:?}", Some(&secret)), "*** *** Some(***)");
        assert_eq!(secret.expose_secret(), "s3cr3t");
    }

    #[test]
    fn describe_names_the_location() {
        assert_eq!(SecretRef::Env("GOOGLE_ADS_ACCESS_TOKEN".into()).describe(), "env GOOGLE_ADS_ACCESS_TOKEN");
        assert_eq!(SecretRef::File("secrets/x".into()).describe(), "file secrets/x");
    }

    #[test]
    fn resolves_from_env_and_files_relative_to_the_project() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("secrets")).unwrap();
        std::fs::write(root.path().join("secrets/token"), "from-file\n").unwrap();
        std::fs::write(root.path().join("secrets/blank"), "\n").unwrap();
        let resolve = |reference: SecretRef| reference.resolve_with_env(root.path(), &env);

        assert_eq!(resolve(SecretRef::Env("TOKEN".into())).unwrap().expose_secret(), "s3cr3t");
        assert_eq!(resolve(SecretRef::File("secrets/token".into())).unwrap().expose_secret(), "from-file");

        let message = |reference: SecretRef| resolve(reference).unwrap_err().to_string();
        assert_eq!(message(SecretRef::Env("MISSING".into())), "environment variable MISSING is not set");
        assert_eq!(message(SecretRef::Env("BLANK".into())), "environment variable BLANK is set but empty");
        assert!(message(SecretRef::File("secrets/nope".into())).ends_with("secrets/nope does not exist"));
        assert!(message(SecretRef::File("secrets/blank".into())).ends_with("secrets/blank is empty"));
        assert!(message(SecretRef::File("secrets".into())).contains("could not be read"));
    }

    #[test]
    fn deserializes_references_and_rejects_inline_values_without_echoing_them() {
        let parse = |yaml: &str| serde_yaml::from_str::<SecretRef>(yaml).map_err(|error| error.to_string());
        assert_eq!(parse("{ env: TOKEN }"), Ok(SecretRef::Env("TOKEN".into())));
        assert_eq!(parse("file: secrets/x"), Ok(SecretRef::File("secrets/x".into())));
        for inline in ["hunter2", "12345", "true"] {
            let error = parse(inline).unwrap_err();
            assert!(error.starts_with(INLINE_SECRET_MESSAGE), "{error}");
            assert!(!error.contains(inline), "the value leaked: {error}");
        }
        assert!(parse("{ env: A, file: b }").unwrap_err().contains("exactly one of"));
        assert!(parse("{ vault: x }").unwrap_err().contains("unknown secret source `vault`"));
        assert!(parse("{ env: 'MY-TOKEN' }").unwrap_err().contains("not an environment variable name"));
    }
}
