//! What the host and a SQL worker say to each other over the worker's pipes.
//!
//! stdin, host → worker: commands, each a little-endian `u32` length and a
//! JSON [`Command`]; `Parquet` and `Table` are followed by one Arrow IPC
//! stream (the table's schema, and for `Table` its batches).
//! stdout, worker → host: after `Select`, the result as one Arrow IPC stream.
//! stderr, worker → host: free text, and on failure a last line
//! [`FAILURE_PREFIX`] + a JSON [`Failure`].

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

/// The longest command the worker reads. A `Select` holds at most
/// `MAX_SQL_BYTES` of SQL; the rest are paths and names.
pub const MAX_COMMAND_BYTES: u32 = 64 << 20;

/// Starts the worker's failure line on stderr.
pub const FAILURE_PREFIX: &str = "floe-sql-worker-failure: ";

#[derive(Debug, Serialize, Deserialize)]
pub enum Command {
    /// Opens the database with the profile's settings. `extra_memory` is what
    /// the process may allocate beyond DuckDB's `memory_limit`, `spill_bytes`
    /// what DuckDB may spill to `temp_directory`.
    Open {
        memory_limit: Option<String>,
        threads: Option<u32>,
        temp_directory: Option<String>,
        variables: Vec<(String, String)>,
        extra_memory: u64,
        spill_bytes: u64,
    },
    /// A view over Parquet files; the schema follows as an IPC stream.
    Parquet { schema: String, table: String, paths: Vec<String>, by_field_id: bool },
    /// A table; its schema and batches follow as an IPC stream.
    Table { schema: String, table: String },
    /// Locks the database down to `allowed_files` and runs `sql`.
    Select { sql: String, allowed_files: Vec<String> },
}

/// Why the worker failed, as the host reports it.
#[derive(Debug, Serialize, Deserialize)]
pub enum Failure {
    /// The SQL is not one SELECT that may run (`ComputeError::Refused`).
    Refused(String),
    /// The database could not be set up or loaded.
    Setup(String),
    /// DuckDB failed running the query.
    Query(String),
}

pub fn write_command(out: &mut impl Write, command: &Command) -> std::io::Result<()> {
    let json = serde_json::to_vec(command).map_err(std::io::Error::other)?;
    let len = u32::try_from(json.len()).map_err(|_| std::io::Error::other("command too long"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&json)
}

/// The next command, or `None` at the end of the input.
pub fn read_command(input: &mut impl Read) -> std::io::Result<Option<Command>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_COMMAND_BYTES {
        return Err(std::io::Error::other(format!("a command of {len} bytes")));
    }
    let mut json = vec![0u8; len as usize];
    input.read_exact(&mut json)?;
    serde_json::from_slice(&json).map(Some).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_one_after_another() {
        let mut wire = Vec::new();
        write_command(&mut wire, &Command::Table { schema: "bronze".into(), table: "t".into() }).unwrap();
        write_command(&mut wire, &Command::Select { sql: "SELECT 1".into(), allowed_files: vec!["/a".into()] })
            .unwrap();
        let mut input = wire.as_slice();
        assert!(matches!(read_command(&mut input).unwrap(), Some(Command::Table { table, .. }) if table == "t"));
        assert!(matches!(read_command(&mut input).unwrap(), Some(Command::Select { sql, .. }) if sql == "SELECT 1"));
        assert!(read_command(&mut input).unwrap().is_none());
        // A length over the bound is refused before anything is allocated.
        let mut huge = (MAX_COMMAND_BYTES + 1).to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        assert!(read_command(&mut huge.as_slice()).is_err());
    }
}
