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
    /// Whether trying again later may succeed: the warehouse could not be reached, another writer holds
    /// the lock, or the database reported a lock conflict, a busy server or a lost connection. A
    /// rejected statement, a schema mismatch or a bug will fail the same way again.
    pub fn is_retryable(&self) -> bool {
        match self {
            WarehouseError::Connect { .. }
            | WarehouseError::Locked { .. }
            | WarehouseError::LockedUnknownHolder { .. } => true,
            WarehouseError::Sql { engine, message, .. } => sql_error_is_transient(engine, message),
            WarehouseError::MetadataTooNew { .. }
            | WarehouseError::Load { .. }
            | WarehouseError::InvalidIdentifier(_)
            | WarehouseError::Unsupported { .. }
            | WarehouseError::Io { .. }
            | WarehouseError::Internal(_) => false,
        }
    }

    pub(crate) fn sql(engine: &'static str, message: impl std::fmt::Display, sql: &str) -> Self {
        WarehouseError::Sql { engine, message: message.to_string(), sql: excerpt(sql) }
    }
}

/// Postgres SQLSTATEs of conditions that pass: connection exceptions (class 08), serialization
/// failure, deadlock, lock not available, too many connections, the server shutting down or starting.
const PG_TRANSIENT_STATES: &[&str] = &["40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03"];

/// Whether a database's message (as the adapters word it) reports a transient condition. Postgres
/// messages end in `(SQLSTATE)`, or are the client's own words when the connection broke; DuckDB
/// reports write conflicts between transactions and a database file locked by another process.
fn sql_error_is_transient(engine: &str, message: &str) -> bool {
    // The server's own words, without the detail and hint the Postgres adapter appends.
    let first = message.split("; detail:").next().unwrap_or(message);
    let first = first.split("; hint:").next().unwrap_or(first);
    match engine {
        "postgres" => {
            let state = first.trim_end().strip_suffix(')').and_then(|m| m.rsplit_once('(')).map(|(_, code)| code);
            match state {
                Some(code) if code.len() == 5 => code.starts_with("08") || PG_TRANSIENT_STATES.contains(&code),
                // Not from the server: the client lost the connection.
                _ => ["connection closed", "error communicating with the server", "timeout"]
                    .iter()
                    .any(|m| first.contains(m)),
            }
        }
        "duckdb" => {
            first.contains("write-write conflict")
                || (first.contains("TransactionContext Error") && first.contains("Conflict"))
                || first.contains("Could not set lock on file")
        }
        // A write that collided with a concurrent one (the adapter retries a few times itself).
        "bigquery" => first.contains("concurrent update") || first.contains("Transaction is aborted"),
        _ => false,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(engine: &'static str, message: &str) -> WarehouseError {
        WarehouseError::sql(engine, message, "SELECT 1")
    }

    #[test]
    fn locks_busy_servers_and_lost_connections_are_retryable() {
        for e in [
            sql("postgres", "could not serialize access due to concurrent update (40001)"),
            sql("postgres", "deadlock detected (40P01); detail: Process 1 waits for ShareLock"),
            sql("postgres", "terminating connection due to administrator command (57P01)"),
            sql("postgres", "connection to server was lost (08006)"),
            sql("postgres", "connection closed"),
            sql("duckdb", "TransactionContext Error: Catalog write-write conflict on create with \"t\""),
            sql("duckdb", "IO Error: Could not set lock on file \"/x.duckdb\": Conflicting lock is held"),
            WarehouseError::Connect { target: "postgres db".into(), message: "connection refused".into() },
            WarehouseError::LockedUnknownHolder { lock: "x.mdp-lock".into() },
        ] {
            assert!(e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn rejected_statements_and_bugs_are_not_retryable() {
        for e in [
            sql("postgres", "syntax error at or near \"SELEC\" (42601)"),
            sql("postgres", "relation \"x\" does not exist (42P01); hint: lock the door (40001)"),
            sql("duckdb", "Parser Error: syntax error at or near \"SELEC\""),
            sql("duckdb", "Binder Error: Referenced column \"lock\" not found"),
            WarehouseError::Load { table: "raw.x".into(), message: "column y is missing".into() },
            WarehouseError::Internal("oops".into()),
        ] {
            assert!(!e.is_retryable(), "{e}");
        }
    }
}
