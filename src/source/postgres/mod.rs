//! PostgreSQL clusters as a backup source: what a tenant's cluster is (version, system
//! identifier, archiving, checksums), the session that holds it in backup mode while its data
//! directory is copied, the rules of what is copied ([`layout`]), and page checks ([`pages`]).
//!
//! A backup is PostgreSQL's non-exclusive low-level backup: `pg_backup_start(label, fast)` on a
//! session held open for the whole copy, then `pg_backup_stop()` on that same session, whose
//! `backup_label` and `tablespace_map` go into the set. The backup mode belongs to the session:
//! when backstop stops, is cancelled or is killed, the connection closes and PostgreSQL ends the
//! backup by itself.

pub mod layout;
pub mod pages;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::storage::uri::mask_secrets;

/// The oldest PostgreSQL release backstop backs up.
pub const MIN_VERSION_NUM: i32 = 120_000;

/// What went wrong with a cluster; messages never hold the source's password.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to PostgreSQL at {uri}: {detail}")]
    Unreachable { uri: String, detail: String },
    /// What is missing for backups, every item in one message.
    #[error("PostgreSQL at {uri} cannot be backed up yet: {}", problems.join("; "))]
    NotReady { uri: String, problems: Vec<String> },
    #[error("PostgreSQL at {uri} refused `{what}`: {detail}")]
    Refused {
        uri: String,
        what: &'static str,
        detail: String,
    },
}

/// A registered cluster as its server and its data directory describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub version_num: i32,
    /// `server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`.
    pub version: String,
    pub system_identifier: u64,
    pub archive_mode: String,
    pub wal_level: String,
    pub data_checksums: bool,
    pub wal_segment_size: u64,
    pub block_size: u64,
}

fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// Opens a session to the cluster at `uri` (`postgres://user[:password]@host:port/db`).
pub async fn connect(uri: &str, application: &str) -> Result<Client, ClusterError> {
    let unreachable = |detail: String| ClusterError::Unreachable {
        uri: mask_secrets(uri),
        detail,
    };
    let mut config: tokio_postgres::Config = uri
        .parse()
        .map_err(|e: tokio_postgres::Error| unreachable(format!("not a connection URI: {e}")))?;
    config
        .application_name(application)
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| unreachable(db_error(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "PostgreSQL session ended");
        }
    });
    Ok(client)
}

async fn setting(client: &Client, uri: &str, name: &str) -> Result<String, ClusterError> {
    let row = client
        .query_one("SELECT current_setting($1)", &[&name])
        .await
        .map_err(|e| ClusterError::Refused {
            uri: mask_secrets(uri),
            what: "current_setting",
            detail: db_error(&e),
        })?;
    Ok(row.get(0))
}

/// Whether the session's role may run the backup functions of this release.
async fn may_back_up(client: &Client, version_num: i32) -> Result<bool, tokio_postgres::Error> {
    let (start, stop) = if version_num >= 150_000 {
        ("pg_backup_start(text, boolean)", "pg_backup_stop(boolean)")
    } else {
        (
            "pg_start_backup(text, boolean, boolean)",
            "pg_stop_backup(boolean, boolean)",
        )
    };
    let row = client
        .query_one(
            "SELECT has_function_privilege($1, 'EXECUTE') AND has_function_privilege($2, 'EXECUTE')",
            &[&start, &stop],
        )
        .await?;
    Ok(row.get(0))
}

/// Reads the system identifier a data directory's `global/pg_control` holds (its first field).
pub fn data_directory_identifier(pgdata: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    std::fs::File::open(pgdata.join("global/pg_control"))?.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Connects to the cluster at `uri` and checks everything a backup of it needs: the release
/// (12 and later), the role's right to run the backup functions, `wal_level`, and that `pgdata`
/// is this cluster's data directory (its `PG_VERSION`, and the system identifier in its
/// `pg_control` equal to the server's). Every problem found is named in one error.
pub async fn inspect(uri: &str, pgdata: &Path) -> Result<ClusterInfo, ClusterError> {
    let client = connect(uri, "backstop register").await?;
    let refused = |what: &'static str, e: tokio_postgres::Error| ClusterError::Refused {
        uri: mask_secrets(uri),
        what,
        detail: db_error(&e),
    };
    let version_num: i32 = setting(&client, uri, "server_version_num")
        .await?
        .parse()
        .unwrap_or_default();
    let version = setting(&client, uri, "server_version").await?;
    let mut problems = Vec::new();
    if version_num < MIN_VERSION_NUM {
        problems.push(format!(
            "the server is PostgreSQL {version}; backstop backs up release 12 and later"
        ));
    }
    let row = client
        .query_one(
            "SELECT system_identifier::text FROM pg_control_system()",
            &[],
        )
        .await
        .map_err(|e| refused("pg_control_system()", e))?;
    let system_identifier: u64 = row.get::<_, String>(0).parse().unwrap_or_default();
    if !may_back_up(&client, version_num)
        .await
        .map_err(|e| refused("has_function_privilege", e))?
    {
        let (start, stop) = if version_num >= 150_000 {
            ("pg_backup_start", "pg_backup_stop")
        } else {
            ("pg_start_backup", "pg_stop_backup")
        };
        problems.push(format!(
            "the role may not run {start}/{stop}: GRANT EXECUTE ON FUNCTION {start}, {stop} to \
             it, or connect as a superuser"
        ));
    }
    let wal_level = setting(&client, uri, "wal_level").await?;
    if wal_level == "minimal" {
        problems.push(
            "wal_level is minimal: set wal_level = replica in postgresql.conf and restart"
                .to_string(),
        );
    }
    let archive_mode = setting(&client, uri, "archive_mode").await?;
    let data_checksums = setting(&client, uri, "data_checksums").await? == "on";
    let wal_segment_size = setting(&client, uri, "wal_segment_size").await?;
    let block_size: u64 = setting(&client, uri, "block_size")
        .await?
        .parse()
        .unwrap_or(pages::PAGE as u64);
    if block_size != pages::PAGE as u64 {
        problems.push(format!(
            "the cluster's block_size is {block_size}; backstop backs up clusters with 8192-byte \
             blocks"
        ));
    }
    let major = version_num / 10_000;
    match std::fs::read_to_string(pgdata.join("PG_VERSION")) {
        Ok(text) if text.trim() == major.to_string() => {}
        Ok(text) => problems.push(format!(
            "PGDATA {} holds a PostgreSQL {} data directory, and the server is release {major}",
            pgdata.display(),
            text.trim()
        )),
        Err(e) => problems.push(format!(
            "PGDATA {} is not readable as a data directory (PG_VERSION: {e})",
            pgdata.display()
        )),
    }
    match data_directory_identifier(pgdata) {
        Ok(id) if id == system_identifier => {}
        Ok(id) => problems.push(format!(
            "PGDATA {} belongs to system {id}, and the server is system {system_identifier}: \
             name the data directory of the server the SOURCE connects to",
            pgdata.display()
        )),
        Err(e) => problems.push(format!(
            "cannot read {}/global/pg_control: {e}",
            pgdata.display()
        )),
    }
    if !problems.is_empty() {
        return Err(ClusterError::NotReady {
            uri: mask_secrets(uri),
            problems,
        });
    }
    Ok(ClusterInfo {
        version_num,
        version,
        system_identifier,
        archive_mode,
        wal_level,
        data_checksums,
        wal_segment_size: parse_size(&wal_segment_size).unwrap_or(16 << 20),
        block_size,
    })
}

/// `16MB`, `1GB`, `8kB` as bytes.
fn parse_size(text: &str) -> Option<u64> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let n: u64 = digits.parse().ok()?;
    let unit = match text[digits.len()..].trim() {
        "" | "B" => 1,
        "kB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => return None,
    };
    Some(n * unit)
}

/// `X/Y` as PostgreSQL prints an LSN.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// Where a backup started, as `pg_backup_start` says, and what the cluster is at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPoint {
    pub lsn: u64,
    /// The WAL segment holding the start: the first one recovery needs.
    pub wal_file: String,
    pub version_num: i32,
    pub system_identifier: String,
    pub data_checksums: bool,
    pub wal_segment_size: u64,
}

/// What `pg_backup_stop` hands back: the end of the backup and the files recovery needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopPoint {
    pub lsn: u64,
    /// The WAL segment holding the end: the last one recovery needs to be consistent.
    pub wal_file: String,
    pub backup_label: String,
    pub tablespace_map: String,
}

/// A session holding its cluster in backup mode from [`BackupSession::start`] to
/// [`BackupSession::stop`]. Dropping it closes the connection, which ends the backup mode.
pub struct BackupSession {
    client: Client,
    uri: String,
    version_num: i32,
}

impl BackupSession {
    /// Starts a backup labelled `label`, with an immediate checkpoint.
    pub async fn start(
        uri: &str,
        label: &str,
    ) -> Result<(BackupSession, StartPoint), ClusterError> {
        let client = connect(uri, "backstop backup").await?;
        let version_num: i32 = setting(&client, uri, "server_version_num")
            .await?
            .parse()
            .unwrap_or_default();
        let session = BackupSession {
            client,
            uri: uri.to_string(),
            version_num,
        };
        let start = if version_num >= 150_000 {
            "pg_backup_start($1, true)"
        } else {
            "pg_start_backup($1, true, false)"
        };
        let sql = format!(
            "SELECT lsn::text, pg_walfile_name(lsn), current_setting('data_checksums'), \
             current_setting('wal_segment_size'), \
             (SELECT system_identifier::text FROM pg_control_system()) FROM {start} AS lsn"
        );
        let row = session
            .client
            .query_one(&sql, &[&label])
            .await
            .map_err(|e| session.refused("pg_backup_start", &e))?;
        let lsn: String = row.get(0);
        let start = StartPoint {
            lsn: parse_lsn(&lsn).unwrap_or_default(),
            wal_file: row.get(1),
            version_num,
            data_checksums: row.get::<_, String>(2) == "on",
            wal_segment_size: parse_size(&row.get::<_, String>(3)).unwrap_or(16 << 20),
            system_identifier: row.get(4),
        };
        Ok((session, start))
    }

    fn refused(&self, what: &'static str, e: &tokio_postgres::Error) -> ClusterError {
        ClusterError::Refused {
            uri: mask_secrets(&self.uri),
            what,
            detail: db_error(e),
        }
    }

    /// Ends the backup; PostgreSQL switches to a new WAL segment so that the last one needed
    /// can be archived. Does not wait for the archive: the caller does, on its own terms.
    pub async fn stop(self) -> Result<StopPoint, ClusterError> {
        let sql = if self.version_num >= 150_000 {
            "SELECT s.lsn::text, pg_walfile_name(s.lsn), s.labelfile, coalesce(s.spcmapfile, '') \
             FROM pg_backup_stop(false) AS s"
        } else {
            "SELECT s.lsn::text, pg_walfile_name(s.lsn), s.labelfile, coalesce(s.spcmapfile, '') \
             FROM pg_stop_backup(false, false) AS s"
        };
        let row = self
            .client
            .query_one(sql, &[])
            .await
            .map_err(|e| self.refused("pg_backup_stop", &e))?;
        let lsn: String = row.get(0);
        Ok(StopPoint {
            lsn: parse_lsn(&lsn).unwrap_or_default(),
            wal_file: row.get(1),
            backup_label: row.get(2),
            tablespace_map: row.get(3),
        })
    }
}

/// The tablespaces of a data directory: `(oid, location)` for each `pg_tblspc/<oid>` symlink.
pub fn tablespaces(pgdata: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let dir = pgdata.join("pg_tblspc");
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit()) && entry.file_type()?.is_symlink() {
            found.push((name, std::fs::read_link(entry.path())?));
        }
    }
    found.sort();
    Ok(found)
}

/// The WAL segments from `first` to `last`, both included, in order (`first` alone when they
/// are the same or not both segment names).
pub fn segments_between(first: &str, last: &str, segment_size: u64) -> Vec<String> {
    let mut names = vec![first.to_string()];
    if last != first {
        names.extend(crate::source::log_folder::missing_between(
            first,
            last,
            segment_size,
            usize::MAX,
        ));
        names.push(last.to_string());
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_sizes_and_segment_ranges_read_as_postgresql_writes_them() {
        assert_eq!(parse_lsn("0/2000028"), Some(0x2000028));
        assert_eq!(parse_lsn("1A/FF"), Some((0x1A << 32) | 0xFF));
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(parse_size("16MB"), Some(16 << 20));
        assert_eq!(parse_size("1GB"), Some(1 << 30));
        assert_eq!(
            segments_between(
                "000000010000000000000002",
                "000000010000000000000004",
                16 << 20
            ),
            [
                "000000010000000000000002",
                "000000010000000000000003",
                "000000010000000000000004"
            ]
        );
        assert_eq!(
            segments_between(
                "0000000100000000000000FF",
                "000000010000000100000000",
                16 << 20
            ),
            ["0000000100000000000000FF", "000000010000000100000000"]
        );
    }
}
