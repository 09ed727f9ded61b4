//! Errors of the warehouse layer, classified by who must act (DataFusion style).

use crate::lock::LockHolder;

/// Result alias for the warehouse layer.
pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

/// What went wrong talking to a warehouse.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The warehouse could not be reached or opened. The user fixes the target settings or the server.
    #[error("cannot connect to {target}: {message}")]
    Connect { target: String, message: String },

    /// The database rejected a statement. Carries the database's own message and the start of the SQL.
    #[error("{engine} error: {message}\n  in SQL: {sql}")]
    Sql { engine: &'static str, message: String, sql: String },

    /// Another mdp process is writing to this warehouse.
    #[error("warehouse is locked by run {} since {} (pid {} on {}, `mdp {}`); wait for it to finish, or if that process is gone for good, stop it and retry", .holder.run_id, .holder.since.format("%Y-%m-%d %H:%M:%S UTC"), .holder.pid, .holder.host, .holder.command)]
    Locked { holder: LockHolder },

    /// The lock is held but its holder has not written its details yet (a writer is starting up).
    #[error("warehouse is locked by another mdp process that is starting up ({lock}); retry in a moment")]
    LockedUnknownHolder { lock: String },

    /// The metadata schema was written by a newer mdp.
    #[error("the warehouse's metadata schema is at version {found}, but this mdp only knows versions up to {known}: upgrade mdp")]
    MetadataTooNew { found: i64, known: i64 },

    /// Data handed to the warehouse does not fit the table (column names or types).
    #[error("cannot load into {table}: {message}")]
    Load { table: String, message: String },

    /// An identifier that no quoting can make safe (e.g. it contains a NUL byte).
    #[error("invalid identifier {0:?}: identifiers must be non-empty and must not contain NUL bytes")]
    InvalidIdentifier(String),

    /// A capability this adapter does not have.
    #[error("{engine} does not support {what}")]
    Unsupported { engine: &'static str, what: String },

    /// File-system problems (DuckDB file, lock file).
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },

    /// A bug in mdp: please report it.
    #[error("internal error (a bug in mdp, please report it): {0}")]
    Internal(String),
}

impl WarehouseError {
    pub(crate) fn sql(engine: &'static str, message: impl std::fmt::Display, sql: &str) -> Self {
        WarehouseError::Sql { engine, message: message.to_string(), sql: excerpt(sql) }
    }
}

/// The first lines of a statement, enough to recognise it in an error message.
fn excerpt(sql: &str) -> String {
    const MAX: usize = 300;
    let trimmed = sql.trim();
    if trimmed.len() <= MAX {
        return trimmed.to_string();
    }
    let mut end = MAX;
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", &trimmed[..end])
}
