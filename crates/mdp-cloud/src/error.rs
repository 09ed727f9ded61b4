//! What can go wrong talking to a cloud warehouse, by who must act.

/// An error of a cloud warehouse's API.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    /// The service could not be reached, or answered with a server error or a rate limit: trying
    /// again later may work.
    #[error("{0}")]
    Unavailable(String),

    /// The service refused the credentials or the session: the user fixes the settings.
    #[error("{0}")]
    Auth(String),

    /// The warehouse rejected the statement (its own code, state and message).
    #[error("{message}")]
    Sql { code: String, sql_state: Option<String>, message: String },

    /// The answer was not what the protocol says it should be.
    #[error("unexpected answer from {service}: {message}")]
    Protocol { service: &'static str, message: String },

    /// The settings cannot work (a key that does not parse, a bad URL).
    #[error("{0}")]
    Config(String),
}
