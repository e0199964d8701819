//! PostgreSQL tenants in the executor: the backup mode around a data backup's copy, the WAL a
//! set needs before it is recorded, and the files a restore writes so that PostgreSQL recovers.
//!
//! A backup attempt opens its own session and calls `pg_backup_start` (a new label each time,
//! so a retried or resumed task is a new PostgreSQL backup whose unchanged files come from the
//! checkpoint); the engine copies the data directory with PostgreSQL's rules; then, before the
//! set is made visible, the seal calls `pg_backup_stop` on the same session and waits until the
//! WAL from the start to the stop segment is in the archive (or, for a set made PLUS ARCHIVELOG,
//! keeps it beside the set). Any end before that drops the session, which ends the backup mode.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::Executor;
use super::backup::Target;
use crate::catalog::Catalog;
use crate::catalog::tenants::Tenant;
use crate::engine::archive::{copy_segment, put_segment, segment_header};
use crate::engine::{DamagedPage, EngineError, PostgresBackup, SetDescriptor};
use crate::source::postgres::{
    BackupSession, ClusterError, StartPoint, segments_between, tablespaces,
};

/// A PostgreSQL backup between its start and its seal.
pub(super) struct PgBackup {
    session: Option<BackupSession>,
    pub(super) start: StartPoint,
    pub(super) pgdata: PathBuf,
    tablespaces: Vec<(String, String)>,
}

pub(super) fn cluster_error(e: ClusterError) -> EngineError {
    let retryable = matches!(e, ClusterError::Unreachable { .. });
    EngineError::Cluster {
        detail: e.to_string(),
        retryable,
    }
}

/// The label PostgreSQL records for a backup (it shows in `backup_label` and in the log).
fn label(tenant: &Tenant, set_id: i64) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    format!("backstop {} set {set_id} {now}", tenant.name)
}

impl Executor {
    /// Puts the tenant's cluster in backup mode for one attempt at set `set_id`.
    pub(super) async fn begin_pg_backup(
        &self,
        target: &Target,
        set_id: i64,
    ) -> Result<PgBackup, EngineError> {
        let tenant = &target.tenant;
        let (Some(uri), Some(pgdata)) = (tenant.source.as_deref(), tenant.pgdata.as_deref()) else {
            return Err(EngineError::Cluster {
                detail: format!("tenant {} has no SOURCE or PGDATA", tenant.name),
                retryable: false,
            });
        };
        let pgdata = PathBuf::from(pgdata);
        let found =
            tablespaces(&pgdata).map_err(|e| EngineError::io("list tablespaces", &pgdata, e))?;
        let (session, start) = BackupSession::start(uri, &label(tenant, set_id))
            .await
            .map_err(cluster_error)?;
        tracing::info!(
            tenant = %tenant.name,
            start_lsn = start.lsn,
            start_wal = %start.wal_file,
            "PostgreSQL backup started"
        );
        Ok(PgBackup {
            session: Some(session),
            start,
            pgdata,
            tablespaces: found
                .into_iter()
                .map(|(oid, location)| (oid, location.to_string_lossy().into_owned()))
                .collect(),
        })
    }
}

impl PgBackup {
    /// Ends the backup mode of an attempt that did not reach its seal (failed, cancelled,
    /// suspended), so that PostgreSQL is out of backup mode before the task ends. Closing the
    /// session would end it too, a moment later; a session already gone needs nothing.
    pub(super) async fn abort(mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let stopped = tokio::time::timeout(Duration::from_secs(10), session.stop()).await;
        match stopped {
            Ok(Ok(_)) => tracing::info!("PostgreSQL backup mode ended for an unfinished attempt"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot end the backup mode; closing its session ends it")
            }
            Err(_) => tracing::warn!(
                "pg_backup_stop did not answer in 10 s; closing its session ends the backup mode"
            ),
        }
    }

    /// What the engine calls once every file is stored: ends the backup mode, makes sure the
    /// WAL the set needs is kept, and returns what the set descriptor records. Blocking (the
    /// session's calls run on `runtime`).
    pub(super) fn seal(
        &mut self,
        catalog: &Catalog,
        runtime: &tokio::runtime::Handle,
        target: &Target,
        plus_archivelog: bool,
        damaged: &[DamagedPage],
        cancel: &CancellationToken,
    ) -> Result<PostgresBackup, EngineError> {
        let pg = self;
        let tenant = &target.tenant;
        let ignore_damage = catalog
            .parameter(tenant.id, "backup_ignore_checksum_failures")
            .ok()
            .flatten()
            .as_deref()
            == Some("true");
        if !damaged.is_empty() && !ignore_damage {
            return Err(EngineError::DamagedPages {
                count: damaged.len(),
                pages: name_pages(damaged),
            });
        }
        let session = pg.session.take().ok_or_else(|| EngineError::Cluster {
            detail: "the backup session was already ended".into(),
            retryable: true,
        })?;
        let stop = runtime.block_on(session.stop()).map_err(cluster_error)?;
        tracing::info!(tenant = %tenant.name, stop_wal = %stop.wal_file, "PostgreSQL backup stopped");
        let needed = segments_between(
            &pg.start.wal_file,
            &stop.wal_file,
            pg.start.wal_segment_size,
        );
        if plus_archivelog {
            keep_wal_with_set(
                catalog,
                tenant,
                &target.dest_uri,
                &pg.pgdata,
                &needed,
                cancel,
            )?;
        } else {
            let timeout = catalog
                .parameter(tenant.id, "pg_archive_timeout")
                .ok()
                .flatten()
                .and_then(|v| crate::catalog::parameters::parse_duration(&v))
                .unwrap_or(Duration::from_secs(60));
            wait_for_archive(catalog, tenant, &needed, timeout, cancel)?;
        }
        Ok(PostgresBackup {
            version_num: pg.start.version_num,
            system_identifier: pg.start.system_identifier.clone(),
            start_lsn: format_lsn(pg.start.lsn),
            stop_lsn: format_lsn(stop.lsn),
            start_wal: pg.start.wal_file.clone(),
            stop_wal: stop.wal_file,
            wal_segment_size: pg.start.wal_segment_size,
            backup_label: stop.backup_label,
            tablespace_map: stop.tablespace_map,
            tablespaces: pg.tablespaces.clone(),
        })
    }
}

fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// The first damaged pages, for a message or a COMMENT.
pub(super) fn name_pages(damaged: &[DamagedPage]) -> String {
    let mut named: Vec<String> = damaged
        .iter()
        .take(10)
        .map(|p| format!("{} block {}", p.file, p.block))
        .collect();
    if damaged.len() > 10 {
        named.push("...".into());
    }
    named.join(", ")
}

/// Waits until the catalog records every segment of `needed` as archived for the tenant.
fn wait_for_archive(
    catalog: &Catalog,
    tenant: &Tenant,
    needed: &[String],
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), EngineError> {
    let started = Instant::now();
    for name in needed {
        loop {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let archived = catalog
                .segment(tenant.id, name)
                .map_err(|e| {
                    EngineError::io(
                        "read the catalog",
                        "archive_segment",
                        std::io::Error::other(e.to_string()),
                    )
                })?
                .is_some();
            if archived {
                break;
            }
            if started.elapsed() >= timeout {
                return Err(EngineError::WalNotArchived {
                    tenant: tenant.name.clone(),
                    segment: name.clone(),
                    waited_secs: timeout.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// `PLUS ARCHIVELOG`: puts the WAL the set needs beside it in the data destination, from the
/// archive when it holds a segment, else from the cluster's `pg_wal` (same host).
fn keep_wal_with_set(
    catalog: &Catalog,
    tenant: &Tenant,
    data_dest: &str,
    pgdata: &Path,
    needed: &[String],
    cancel: &CancellationToken,
) -> Result<(), EngineError> {
    let to = catalog.destination_backend(data_dest)?;
    for name in needed {
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        let archived = catalog.segment(tenant.id, name).ok().flatten();
        let round_path = archived
            .as_ref()
            .and_then(|s| catalog.round(tenant.id, s.round_id).ok().flatten())
            .map(|r| r.path);
        if let Some(path) = round_path {
            let from = catalog.destination_backend(&path)?;
            copy_segment(from.as_ref(), to.as_ref(), tenant.id, name)?;
            continue;
        }
        let file = pgdata.join("pg_wal").join(name);
        let data =
            std::fs::read(&file).map_err(|e| EngineError::io("read WAL segment", &file, e))?;
        let hash = *blake3::hash(&data).as_bytes();
        if segment_header(to.as_ref(), tenant.id, name)?.is_some_and(|h| h.hash == hash) {
            continue;
        }
        let close_scn = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        put_segment(to.as_ref(), tenant.id, name, &data, close_scn, 1)?;
    }
    Ok(())
}

impl Executor {
    /// The WAL segments a restore of `plan` replays: from the set's first segment to its last
    /// (`UNTIL BACKUPSET`), to the archived segment holding the target time (`UNTIL TIME`), or
    /// to the newest archived one. Empty for a set that is not PostgreSQL's.
    pub fn wal_needed(
        &self,
        spec: &super::restore::RestoreSpec,
        plan: &super::restore::RestorePlan,
    ) -> crate::error::SqlResult<Vec<String>> {
        use super::restore::RestorePoint;
        let Some(pg) = &plan.set.postgres else {
            return Ok(Vec::new());
        };
        let is_wal = |name: &str| name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let archived = |until_scn: i64| -> crate::error::SqlResult<Vec<String>> {
            let Some(tenant) = self.catalog.tenant_by_name(&spec.from)? else {
                return Ok(Vec::new());
            };
            Ok(self
                .catalog
                .segments_until(tenant.id, until_scn)?
                .into_iter()
                .map(|s| s.name)
                .filter(|n| is_wal(n) && n.as_str() >= pg.start_wal.as_str())
                .collect())
        };
        let last = match &spec.until {
            Some(RestorePoint::BackupSet(_)) => pg.stop_wal.clone(),
            Some(RestorePoint::Time(text)) => {
                let until = super::restore::parse_until_time(text)?
                    .timestamp_nanos_opt()
                    .unwrap_or(i64::MAX);
                let closed = archived(until)?;
                // The segment being written at the target time closed after it: the next one.
                let after = archived(i64::MAX)?
                    .into_iter()
                    .find(|n| closed.last().is_none_or(|c| n > c));
                after
                    .or_else(|| closed.last().cloned())
                    .unwrap_or_else(|| pg.stop_wal.clone())
                    .max(pg.stop_wal.clone())
            }
            None => archived(i64::MAX)?
                .last()
                .cloned()
                .unwrap_or_else(|| pg.stop_wal.clone())
                .max(pg.stop_wal.clone()),
        };
        let mut names = segments_between(&pg.start_wal, &last, pg.wal_segment_size);
        names.truncate(100_000);
        Ok(names)
    }
}

/// How a restored PostgreSQL data directory recovers.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The command PostgreSQL runs for each WAL file it needs.
    pub restore_command: String,
    /// `recovery_target_time`, UTC.
    pub target_time: Option<String>,
    /// Stop as soon as the set is consistent (`UNTIL BACKUPSET`).
    pub immediate: bool,
    /// Where each tablespace goes, by oid; a tablespace not named goes back where it was.
    pub tablespace_map: HashMap<String, PathBuf>,
}

/// Where the tablespaces of `set` go in a restore with `map`; refused when a location is
/// already in use (not empty), since a restore never writes into another cluster's tablespace.
pub fn tablespace_locations(
    set: &SetDescriptor,
    map: &HashMap<String, PathBuf>,
) -> Result<Vec<(String, PathBuf)>, String> {
    let Some(pg) = &set.postgres else {
        return Ok(Vec::new());
    };
    let mut locations = Vec::new();
    for (oid, original) in &pg.tablespaces {
        let location = map
            .get(oid)
            .cloned()
            .unwrap_or_else(|| PathBuf::from(original));
        if location
            .read_dir()
            .is_ok_and(|mut entries| entries.next().is_some())
        {
            return Err(format!(
                "tablespace {oid} would be restored into {}, which is not empty: map it \
                 elsewhere with WITH 'tablespace_map={oid}=/new/path'",
                location.display()
            ));
        }
        locations.push((oid.clone(), location));
    }
    Ok(locations)
}

/// Turns a restored data directory into one PostgreSQL recovers from: tablespaces moved to
/// their locations and linked, `backup_label`, `tablespace_map`, `recovery.signal`, and the
/// recovery settings appended to `postgresql.auto.conf`. Blocking.
pub fn prepare_recovery(
    target: &Path,
    pg: &PostgresBackup,
    locations: &[(String, PathBuf)],
    recovery: &Recovery,
) -> Result<(), EngineError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| EngineError::io(what, path, e)
    };
    let owner = std::fs::metadata(target).map_err(io("inspect", target))?;
    let mut map_lines = String::new();
    for (oid, location) in locations {
        let restored = target.join("pg_tblspc").join(oid);
        if restored.is_dir() && !restored.is_symlink() {
            move_tree(&restored, location)?;
            symlink(location, &restored).map_err(io("link tablespace", &restored))?;
        }
        map_lines.push_str(&format!("{oid} {}\n", location.display()));
    }
    // PostgreSQL's own files: owned like the data directory, readable by its owner only.
    let written = |name: &str, data: &[u8]| -> Result<(), EngineError> {
        let path = target.join(name);
        write_file(&path, data)?;
        owned_like(&path, &owner, 0o600)
    };
    written("backup_label", pg.backup_label.as_bytes())?;
    if !map_lines.is_empty() {
        written("tablespace_map", map_lines.as_bytes())?;
    }
    written("recovery.signal", b"")?;
    let status = target.join("pg_wal/archive_status");
    if !status.is_dir() {
        std::fs::create_dir_all(&status).map_err(io("create", &status))?;
        owned_like(&status, &owner, 0o700)?;
    }
    let mut settings = String::from("\n# Added by backstop's restore: recover from its archive.\n");
    settings.push_str(&format!(
        "restore_command = {}\n",
        conf_string(&recovery.restore_command)
    ));
    // A target is a point of the backup's own timeline: a later restore that was promoted
    // (a newer timeline in the archive) must not lead recovery away from it.
    if let Some(time) = &recovery.target_time {
        settings.push_str(&format!("recovery_target_time = '{time}+00'\n"));
        settings.push_str("recovery_target_timeline = 'current'\n");
    } else if recovery.immediate {
        settings.push_str("recovery_target = 'immediate'\n");
        settings.push_str("recovery_target_timeline = 'current'\n");
    }
    settings.push_str("recovery_target_action = 'promote'\n");
    let auto = target.join("postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&auto)
        .map_err(io("open", &auto))?;
    file.write_all(settings.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write", &auto))?;
    std::fs::File::open(target)
        .and_then(|dir| dir.sync_all())
        .map_err(io("fsync", target))
}

/// Gives `path` the owner and group of `like` (when the server may: it runs as root, or as
/// that owner already) and `mode`.
fn owned_like(path: &Path, like: &std::fs::Metadata, mode: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mine = std::fs::metadata(path).map_err(|e| EngineError::io("inspect", path, e))?;
    if (mine.uid(), mine.gid()) != (like.uid(), like.gid()) {
        std::os::unix::fs::chown(path, Some(like.uid()), Some(like.gid()))
            .map_err(|e| EngineError::io("chown", path, e))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| EngineError::io("chmod", path, e))
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), EngineError> {
    super::archive::write_durably(path, data).map_err(|e| EngineError::io("write", path, e))
}

/// Moves a restored tablespace to its location: a rename on the same filesystem, else a copy
/// (PostgreSQL's files keep their modes) and the removal of the restored copy.
fn move_tree(from: &Path, to: &Path) -> Result<(), EngineError> {
    if to.exists() {
        std::fs::remove_dir(to).map_err(|e| EngineError::io("replace empty folder", to, e))?;
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| EngineError::io("create", parent, e))?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let status = std::process::Command::new("cp")
                .arg("-a")
                .arg(from)
                .arg(to)
                .status()
                .map_err(|e| EngineError::io("copy tablespace", to, e))?;
            if !status.success() {
                return Err(EngineError::io(
                    "copy tablespace",
                    to,
                    std::io::Error::other(format!("cp -a exited with {status}")),
                ));
            }
            std::fs::remove_dir_all(from).map_err(|e| EngineError::io("remove", from, e))
        }
        Err(e) => Err(EngineError::io("move tablespace", to, e)),
    }
}

/// The `restore_command` a restored cluster runs: this server's `backstop archive-get`.
pub fn restore_command(
    executor: &Arc<Executor>,
    tenant: &str,
    user: &str,
    at: Option<&str>,
) -> String {
    let configured = executor
        .catalog
        .parameter(crate::catalog::SYS_TENANT_ID, "pg_tool_path")
        .ok()
        .flatten()
        .filter(|p| !p.is_empty());
    let exe = configured.unwrap_or_else(|| {
        std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "backstop".into())
    });
    let (host, port) = executor
        .address()
        .map_or(("127.0.0.1".to_string(), 5433), |a| {
            let host = if a.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                a.ip().to_string()
            };
            (host, a.port())
        });
    let password_file = executor
        .catalog
        .parameter(crate::catalog::SYS_TENANT_ID, "pg_tool_password_file")
        .ok()
        .flatten()
        .filter(|p| !p.is_empty())
        .map(|p| format!(" --password-file {}", shell_word(&p)))
        .unwrap_or_default();
    // A restore `AT` destinations fetches its WAL from them: the catalog may not know them.
    // A URI holding a secret is not written into postgresql.auto.conf: that restore fetches
    // through the catalog, as others do.
    let at = at
        .filter(|uris| crate::catalog::mask_secrets(uris) == *uris)
        .map(|uris| format!(" --at {}", shell_word(uris)))
        .unwrap_or_default();
    format!(
        "{} archive-get --tenant {} --host {host} --port {port} --user {}{password_file}{at} %f \"%p\"",
        shell_word(&exe),
        shell_word(tenant),
        shell_word(user),
    )
}

/// `text` as one word of a POSIX shell command, taken literally: PostgreSQL runs
/// `restore_command` through `sh -c`, and a tenant or user name may hold `"`, `$` or a
/// backquote.
fn shell_word(text: &str) -> String {
    // A quote closes the word, is given double-quoted, and reopens it: no backslash, which
    // postgresql.conf would read as an escape. `%` is doubled: PostgreSQL replaces `%f`, `%p`
    // and `%%` in the command before the shell sees it.
    format!("'{}'", text.replace('\'', "'\"'\"'").replace('%', "%%"))
}

/// `value` as a postgresql.conf string: quoted, its quotes doubled and its backslashes escaped
/// (the configuration file reads backslash escapes in strings).
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reach_the_restore_command_literally_through_sh_and_the_configuration_file() {
        let name = "a'b\"c$d`e\\f g%f";
        // What PostgreSQL does with the command's `%%` before it runs it.
        let substituted = shell_word(name).replace("%%", "%");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {substituted}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(output.stdout).unwrap(), name);
        assert_eq!(conf_string("it's a\\b"), "'it''s a\\\\b'");
    }
}
