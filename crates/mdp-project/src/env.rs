//! Where environment variables come from: the process, or a fake in tests.

/// A source of environment variables. Implemented by [`ProcessEnv`] and by any
/// `Fn(&str) -> Option<String>` closure, so tests never mutate the process environment.
pub trait EnvLookup {
    /// The variable's value, or `None` when it is not set (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The real environment of this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<F: Fn(&str) -> Option<String>> EnvLookup for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Environment variable names as POSIX shells accept them: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_valid_env_var_name(name: &str) -> bool {
    name.starts_with(|first: char| first.is_ascii_alphabetic() || first == '_')
        && name.chars().all(|character| character.is_ascii_alphanumeric() || character == '_')
}
