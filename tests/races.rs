//! Control statements raced on purpose against jobs that are starting, running and finishing
//! (issue 12): CANCEL, STOP, SUSPEND and RESUME land at random moments on data backups,
//! restores, validations, set copies and piece copies, 300 times. Whatever the moment, every job must reach an
//! end its state machine allows, leave the live views for the history, leave no task live, and
//! keep what its end says: a completed backup has its set, a cancelled restore registers no
//! tenant, a completed one does.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::tree::noise;
use common::{TestServer, sqlstate, value};
use tokio_postgres::Client;

const ITERATIONS: usize = 300;

/// A small deterministic generator: the same moments on every run.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Backup,
    Restore,
    Validate,
    SetCopy,
    PieceCopy,
}

/// The statement that starts a job of `kind` for iteration `i`.
fn start_statement(kind: Kind, i: usize, root: &Path) -> String {
    match kind {
        Kind::Backup => "ALTER SYSTEM BACKUP TENANT app".into(),
        Kind::Restore => format!(
            "ALTER SYSTEM RESTORE r{i} FROM app TO 'dir://{}'",
            root.join(format!("restore{i}")).display()
        ),
        Kind::Validate => "ALTER SYSTEM VALIDATE BACKUPSET 1 LEVEL = 'physical'".into(),
        Kind::SetCopy => format!(
            "ALTER SYSTEM BACKUP BACKUPSET 1 BACKUP_BACKUP_DEST = 'file://{}'",
            root.join(format!("copy{i}")).display()
        ),
        // Every iteration copies every frozen piece again, to a destination of its own.
        Kind::PieceCopy => format!(
            "ALTER SYSTEM BACKUP BACKUPPIECE ALL NOT BACKED UP 1000 TIMES \
             BACKUP_BACKUP_DEST = 'file://{}'",
            root.join(format!("pieces{i}")).display()
        ),
    }
}

/// The control statements a DBA can send to a job of `kind`.
fn controls(kind: Kind, i: usize) -> Vec<String> {
    match kind {
        Kind::Backup => vec![
            "ALTER SYSTEM CANCEL BACKUP".into(),
            "ALTER SYSTEM STOP BACKUP".into(),
            "ALTER SYSTEM SUSPEND BACKUP".into(),
            "ALTER SYSTEM RESUME BACKUP".into(),
        ],
        Kind::Restore => vec![format!("ALTER SYSTEM CANCEL RESTORE r{i}")],
        Kind::Validate => vec!["ALTER SYSTEM CANCEL VALIDATE".into()],
        Kind::SetCopy => vec![
            "ALTER SYSTEM CANCEL BACKUP BACKUPSET".into(),
            "ALTER SYSTEM STOP BACKUP BACKUPSET".into(),
        ],
        // STOP is refused for a piece copy (55000), whatever the moment.
        Kind::PieceCopy => vec![
            "ALTER SYSTEM CANCEL BACKUP BACKUPPIECE".into(),
            "ALTER SYSTEM STOP BACKUP BACKUPPIECE".into(),
        ],
    }
}

/// The ends a job of `kind` may reach after these statements, in the words its views use.
fn allowed_ends(kind: Kind) -> &'static [&'static str] {
    match kind {
        // FAILED only as a graceful stop that found no task started (checked below).
        Kind::Backup => &["COMPLETED", "CANCELED", "FAILED"],
        Kind::Restore | Kind::Validate => &["COMPLETED", "CANCELED"],
        Kind::SetCopy | Kind::PieceCopy => &["FINISH", "CANCEL"],
    }
}

/// The live view and the history view of a job kind, and the column naming the job.
fn views(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Backup => ("cdb_ob_backup_jobs", "cdb_ob_backup_job_history"),
        Kind::Restore => ("cdb_ob_restore_progress", "cdb_ob_restore_history"),
        Kind::Validate => (
            "cdb_ob_backup_validate_jobs",
            "cdb_ob_backup_validate_job_history",
        ),
        Kind::SetCopy => (
            "cdb_ob_backup_backupset_job",
            "cdb_ob_backup_backupset_job_history",
        ),
        Kind::PieceCopy => (
            "cdb_ob_backup_backuppiece_job",
            "cdb_ob_backup_backuppiece_job_history",
        ),
    }
}

/// Waits for job `job_id` to end, resuming it when a SUSPEND left it suspended; returns its
/// status and comment. Bounded in time: a job that never ends fails the test.
async fn settle(client: &Client, job_id: i64) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = value(
            client,
            &format!("SELECT status || '|' || coalesce(comment, '') FROM backstop.job WHERE job_id = {job_id}"),
        )
        .await;
        let (status, comment) = row.split_once('|').unwrap();
        match status {
            "COMPLETED" | "FAILED" | "CANCELED" | "FINISH" | "CANCEL" => {
                return (status.to_string(), comment.to_string());
            }
            "SUSPENDED" => {
                // A RESUME that meets a job still SUSPENDING is refused; try again.
                if let Err(e) = client.batch_execute("ALTER SYSTEM RESUME BACKUP").await {
                    assert_eq!(sqlstate(&e), "55000", "{e:?}");
                }
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} is still {status} after a minute: {comment}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Archives a few log segments of tenant app into pieces, and ends the round: its pieces are
/// then all FROZEN, ready to be copied.
async fn frozen_pieces(client: &Client, root: &Path) {
    let log = root.join("log");
    std::fs::create_dir_all(&log).unwrap();
    client
        .batch_execute(&format!(
            "ALTER TENANT app SET LOG_SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://{} PIECE_SWITCH_INTERVAL=1s'; \
             ALTER SYSTEM SET log_segment_quiet_time = '100ms'; \
             ALTER SYSTEM ARCHIVELOG WAIT",
            log.display(),
            root.join("arch").display()
        ))
        .await
        .unwrap();
    for n in 1..=8u64 {
        std::fs::write(log.join(format!("seg{n:06}")), noise(100 + n, 512 << 10)).unwrap();
    }
    // The newest segment closes when it has been quiet for log_segment_quiet_time.
    let deadline = Instant::now() + Duration::from_secs(60);
    while value(client, "SELECT count(*) FROM backstop.archive_segment").await != "8" {
        assert!(
            Instant::now() < deadline,
            "the segments were not archived in a minute"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG WAIT")
        .await
        .unwrap();
    assert_ne!(
        value(
            client,
            "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE status = 'FROZEN'"
        )
        .await,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn control_statements_racing_jobs_always_leave_an_end_the_state_machine_allows() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    std::fs::create_dir_all(&source).unwrap();
    // Big enough that a job takes some milliseconds, so that random moments fall before,
    // during and after its work.
    for i in 0..24 {
        std::fs::write(source.join(format!("f{i:02}")), noise(i, 256 << 10)).unwrap();
    }
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB'; \
             ALTER SYSTEM SET backup_checkpoint_restart = false; \
             ALTER SYSTEM BACKUP TENANT app WAIT",
            source.display(),
            root.join("dest").display()
        ))
        .await
        .unwrap();
    frozen_pieces(&client, root).await;

    let kinds = [
        Kind::Backup,
        Kind::Restore,
        Kind::Validate,
        Kind::SetCopy,
        Kind::PieceCopy,
    ];
    let mut moments = Moments(12);
    let (mut landed, mut refused) = (0, 0);
    for i in 0..ITERATIONS {
        let kind = kinds[i % kinds.len()];
        client
            .batch_execute(&start_statement(kind, i, root))
            .await
            .unwrap_or_else(|e| panic!("iteration {i}: {kind:?} did not start: {e:?}"));
        let job_id: i64 = value(&client, "SELECT max(job_id) FROM backstop.job")
            .await
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(moments.next(40))).await;
        let options = controls(kind, i);
        let control = &options[moments.next(options.len() as u64) as usize];
        match client.batch_execute(control).await {
            Ok(()) => landed += 1,
            // The job ended (or was not in a state the statement applies to) first.
            Err(e) if sqlstate(&e) == "55000" => refused += 1,
            Err(e) => panic!("iteration {i}: {control} against {kind:?} job {job_id}: {e:?}"),
        }
        let (status, comment) = settle(&client, job_id).await;
        let what =
            format!("iteration {i}: {kind:?} job {job_id} after {control}: {status} {comment}");
        assert!(allowed_ends(kind).contains(&status.as_str()), "{what}");
        if kind == Kind::Backup && status == "FAILED" {
            assert_eq!(comment, "Operation was canceled by user", "{what}");
        }
        let (live, history) = views(kind);
        assert_eq!(
            value(
                &client,
                &format!("SELECT count(*) FROM {live} WHERE job_id = {job_id}")
            )
            .await,
            "0",
            "{what}: still in {live}"
        );
        assert_eq!(
            value(
                &client,
                &format!("SELECT count(*) FROM {history} WHERE job_id = {job_id}")
            )
            .await,
            "1",
            "{what}: not in {history}"
        );
        assert_eq!(
            value(
                &client,
                &format!(
                    "SELECT count(*) FROM backstop.task WHERE job_id = {job_id} \
                     AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELED', 'FINISH', 'CANCEL')"
                ),
            )
            .await,
            "0",
            "{what}: a task is still live"
        );
        if kind == Kind::Backup && status != "COMPLETED" {
            assert_eq!(
                value(
                    &client,
                    &format!(
                        "SELECT count(*) FROM cdb_ob_backup_restartable_contexts WHERE job_id = {job_id}"
                    ),
                )
                .await,
                "0",
                "{what}: a job that was stopped or cancelled keeps no context"
            );
        }
        if kind == Kind::Backup && status != "COMPLETED" {
            assert_eq!(
                value(
                    &client,
                    &format!(
                        "SELECT count(*) FROM cdb_ob_backup_restartable_contexts WHERE job_id = {job_id}"
                    ),
                )
                .await,
                "0",
                "{what}: a job that was stopped or cancelled keeps no context"
            );
        }
        match (kind, status.as_str()) {
            (Kind::Backup, "COMPLETED") => assert_eq!(
                value(
                    &client,
                    &format!(
                        "SELECT count(*) FROM cdb_ob_backup_set_files s JOIN backstop.task t \
                         ON s.backup_set_id = t.backup_set_id WHERE t.job_id = {job_id}"
                    ),
                )
                .await,
                "1",
                "{what}: a completed backup has its set"
            ),
            (Kind::Backup, _) => assert_eq!(
                value(
                    &client,
                    &format!(
                        "SELECT count(*) FROM backstop.task t JOIN cdb_ob_backup_set_files s \
                         ON s.backup_set_id = t.backup_set_id WHERE t.job_id = {job_id} \
                         AND t.status <> 'COMPLETED'"
                    ),
                )
                .await,
                "0",
                "{what}: a set without its task completed"
            ),
            (Kind::Restore, status) => assert_eq!(
                value(
                    &client,
                    &format!("SELECT count(*) FROM dba_ob_tenants WHERE tenant_name = 'r{i}'")
                )
                .await,
                if status == "COMPLETED" { "1" } else { "0" },
                "{what}: the restored tenant is registered exactly when the restore completed"
            ),
            _ => {}
        }
    }
    eprintln!("{landed} control statements landed on a live job, {refused} met one that had ended");
    assert!(landed > 0, "no control statement ever met a live job");
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM backstop.job WHERE status IN ('CANCELING', 'SUSPENDING')"
        )
        .await,
        "0"
    );
}
