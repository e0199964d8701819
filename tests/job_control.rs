//! Job control through the wire (SPEC §4.3-4.5): immediate and graceful stop, suspend and
//! resume, restartable contexts across kill -9, CANCEL ALL BACKUP FORCE. Every story ends in a
//! restore compared with the source.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::tree::{assert_same_tree, noise};
use common::{ADMIN_PASSWORD, ChildServer, TestServer, connect_as, sqlstate, until, value};
use tokio_postgres::Client;

fn big_tree(root: &Path, files: u64, mib: usize) {
    std::fs::create_dir_all(root).unwrap();
    for i in 0..files {
        std::fs::write(root.join(format!("file{i:03}")), noise(1000 + i, mib << 20)).unwrap();
    }
}

/// Registers the tenants and a destination. The trees are noise, which is stored as it is, so
/// `backup_net_limit` makes each backup take about a second per 64 MiB however fast the machine:
/// the statements under test always meet a backup that is running and has checkpoints.
async fn setup(client: &Client, tenants: &[(&str, &PathBuf)], dest: &Path) {
    for (name, source) in tenants {
        client
            .batch_execute(&format!(
                "CREATE TENANT {name} SOURCE = 'dir://{}'",
                source.display()
            ))
            .await
            .unwrap();
    }
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; ALTER SYSTEM SET backup_concurrency = 1; \
             ALTER SYSTEM SET backup_checkpoint_interval = '1s'; ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB'; \
             ALTER SYSTEM SET backup_net_limit = '64MB'",
            dest.display()
        ))
        .await
        .unwrap();
}

async fn restore_and_compare(client: &Client, tenant: &str, source: &Path, target: &Path) {
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE {tenant}_r FROM {tenant} TO 'dir://{}' WAIT",
            target.display()
        ))
        .await
        .unwrap();
    assert_same_tree(source, target);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_is_immediate_and_earlier_sets_still_restore() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("a");
    big_tree(&source, 10, 24);
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a WAIT")
        .await
        .unwrap();

    let e = client
        .batch_execute("ALTER SYSTEM CANCEL BACKUP")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    assert_eq!(
        e.as_db_error().unwrap().detail(),
        Some("OB_BACKUP_CANCEL_NOT_ALLOWED (9049)")
    );

    std::fs::write(source.join("file000"), noise(1, 24 << 20)).unwrap();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_tasks WHERE status = 'DOING'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM CANCEL BACKUP TENANT = a")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_jobs",
        "0",
        Duration::from_secs(30),
    )
    .await;
    let row = value(&client, "SELECT status || '|' || result || '|' || comment || '|' || stop_mode FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 1").await;
    // backup_net_limit keeps the backup running for seconds: the cancel lands on it.
    assert_eq!(row, "CANCELED|-4072|canceled by user|IMMEDIATE");
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_set_files").await,
        "1"
    );
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_restartable_contexts"
        )
        .await,
        "0"
    );
    // Never restarted automatically: nothing runs a little later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_jobs").await,
        "0"
    );
    let e = client
        .batch_execute("ALTER SYSTEM CANCEL BACKUP")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55000");
    // The earlier set is intact.
    let first = value(
        &client,
        "SELECT min(backup_set_id) FROM cdb_ob_backup_set_files",
    )
    .await;
    client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE BACKUPSET {first} LEVEL = 'physical' WAIT"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn graceful_stop_finishes_running_tasks_and_skips_the_rest() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    big_tree(&a, 8, 24);
    big_tree(&b, 2, 1);
    setup(&client, &[("a", &a), ("b", &b)], &tmp.path().join("dest")).await;

    client
        .batch_execute("ALTER SYSTEM BACKUP DATABASE")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_tasks WHERE status = 'DOING'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM STOP BACKUP")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_jobs",
        "0",
        Duration::from_secs(120),
    )
    .await;
    let job = value(
        &client,
        "SELECT status || '|' || stop_mode || '|' || comment FROM cdb_ob_backup_job_history",
    )
    .await;
    assert_eq!(
        job,
        "CANCELED|GRACEFUL|stopped gracefully by user: 1 task(s) not started"
    );
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(status, ',' ORDER BY tenant_id) FROM cdb_ob_backup_task_history"
        )
        .await,
        "COMPLETED,CANCELED"
    );
    // The task that was running got its set; the skipped one none.
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(CAST(tenant_id AS VARCHAR), ',') FROM cdb_ob_backup_set_files"
        )
        .await,
        "1001"
    );
    restore_and_compare(&client, "a", &a, &tmp.path().join("ra")).await;

    // STOP means nothing for a restore: refused, naming CANCEL.
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE slow FROM a TO 'dir://{}'",
            tmp.path().join("rslow").display()
        ))
        .await
        .unwrap();
    if let Err(e) = client.batch_execute("ALTER SYSTEM STOP BACKUP").await {
        assert_eq!(sqlstate(&e), "55000");
        let message = e.as_db_error().unwrap().message().to_string();
        assert!(
            message.contains("CANCEL") || message.contains("no backup is running"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn suspend_keeps_a_context_and_resume_goes_on_from_it() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("a");
    big_tree(&source, 12, 24);
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;

    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) > 0 FROM backstop.task WHERE checkpoint_bytes > 0",
        "t",
        Duration::from_secs(60),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM SUSPEND BACKUP")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_backup_jobs",
        "SUSPENDED",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(&client, "SELECT status FROM cdb_ob_backup_tasks").await,
        "SUSPENDED"
    );
    let context = value(&client, "SELECT reason || '|' || is_restartable || '|' || is_busy || '|' || (bytes_done > 0) FROM cdb_ob_backup_restartable_contexts").await;
    assert_eq!(context, "SUSPENDED|true|false|true");
    let done = value(&client, "SELECT checkpoint_bytes FROM backstop.task")
        .await
        .parse::<u64>()
        .unwrap();

    client
        .batch_execute("ALTER SYSTEM RESUME BACKUP WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status || '|' || restart_pass || '|' || comment FROM cdb_ob_backup_job_history"
        )
        .await,
        "COMPLETED|1|resumed from checkpoint"
    );
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_restartable_contexts"
        )
        .await,
        "0"
    );
    let total: u64 = 12 * (24 << 20);
    let read = value(&client, "SELECT bytes_read FROM backstop.task")
        .await
        .parse::<u64>()
        .unwrap();
    assert!(
        read <= total - done + total / 50,
        "resumed run read {read} of {total} after {done} were done"
    );
    restore_and_compare(&client, "a", &source, &tmp.path().join("r")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn contexts_are_listed_restarted_deleted_and_refused_clearly() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    for sql in [
        "ALTER SYSTEM RESTART BACKUP CONTEXT 'no-such-context'",
        "ALTER SYSTEM DELETE BACKUP CONTEXT 'no-such-context'",
    ] {
        let e = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42704", "{sql}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("a");
    big_tree(&source, 10, 24);
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) > 0 FROM backstop.task WHERE checkpoint_bytes > 0",
        "t",
        Duration::from_secs(60),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM SUSPEND BACKUP")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_restartable_contexts",
        "1",
        Duration::from_secs(30),
    )
    .await;
    let id = value(
        &client,
        "SELECT context_id FROM cdb_ob_backup_restartable_contexts",
    )
    .await;
    assert_eq!(id.len(), 36, "a uuid: {id}");
    // Every column of SPEC §3 is there.
    value(&client, "SELECT context_id, job_id, task_id, tenant_id, path, snapshot_name, is_cleanup_pending, \
        is_restartable, is_busy, restart_pass, bytes_done, files_done, checkpoint_time, last_updated, reason \
        FROM cdb_ob_backup_restartable_contexts").await;
    client
        .batch_execute(&format!("ALTER SYSTEM RESTART BACKUP CONTEXT '{id}'"))
        .await
        .unwrap();
    let e = client
        .batch_execute(&format!("ALTER SYSTEM DELETE BACKUP CONTEXT '{id}'"))
        .await;
    if let Err(e) = e {
        assert_eq!(sqlstate(&e), "55000", "busy while its task runs");
    }
    let job = value(&client, "SELECT max(job_id) FROM backstop.job").await;
    client
        .batch_execute(&format!("ALTER SYSTEM WAIT JOB {job}"))
        .await
        .unwrap();
    restore_and_compare(&client, "a", &source, &tmp.path().join("r")).await;

    // Suspend again, then delete the context: the job cannot go on and ends CANCELED.
    std::fs::write(source.join("file000"), noise(5, 24 << 20)).unwrap();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_tasks WHERE status = 'DOING'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM SUSPEND BACKUP")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_backup_jobs",
        "SUSPENDED",
        Duration::from_secs(30),
    )
    .await;
    let id = value(
        &client,
        "SELECT context_id FROM cdb_ob_backup_restartable_contexts",
    )
    .await;
    client
        .batch_execute(&format!("ALTER SYSTEM DELETE BACKUP CONTEXT '{id}'"))
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 1"
        )
        .await,
        "CANCELED"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_all_force_ends_everything_at_once() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("a");
    big_tree(&source, 10, 24);
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    client
        .batch_execute("ALTER SYSTEM CANCEL ALL BACKUP FORCE")
        .await
        .unwrap();
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_jobs").await,
        "0"
    );
    let ended = value(
        &client,
        "SELECT status || '|' || coalesce(comment, '') FROM cdb_ob_backup_job_history",
    )
    .await;
    if ended.starts_with("COMPLETED") {
        eprintln!("the backup ended before the force cancel arrived; nothing was left to cancel");
    } else {
        assert_eq!(ended, "CANCELED|canceled by CANCEL ALL BACKUP FORCE");
    }
    // New work starts at once.
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a WAIT")
        .await
        .unwrap();
    restore_and_compare(&client, "a", &source, &tmp.path().join("r")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_running_past_its_limit_is_cancelled_and_not_restarted() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("a");
    big_tree(&source, 16, 24);
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;
    client.batch_execute("ALTER SYSTEM SET backup_max_run_time = '1s'; ALTER SYSTEM SET backup_restart_delay = '0s'").await.unwrap();
    let e = client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a WAIT")
        .await;
    // 384 MiB at backup_net_limit's 64 MiB/s take about 6 s: the 1 s limit always cuts in.
    assert!(e.is_err(), "the backup finished within backup_max_run_time");
    assert!(
        value(&client, "SELECT comment FROM cdb_ob_backup_job_history")
            .await
            .contains("backup_max_run_time")
    );
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_restartable_contexts"
        )
        .await,
        "0"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        value(&client, "SELECT count(*) FROM backstop.job").await,
        "1"
    );
}

/// The kill test: at 20 moments of one backup the server is killed with SIGKILL and restarted;
/// the backup goes on through its context each time, finishes, and restores identical. The last
/// run re-reads no more than the unfinished part plus one checkpoint interval of data.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_killed_twenty_times_finishes_through_its_context() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let source = tmp.path().join("a");
    big_tree(&source, 64, 16);
    let total: u64 = 64 * (16 << 20);
    let mut server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;
    client.batch_execute("ALTER SYSTEM SET backup_restart_delay = '0s'; ALTER SYSTEM SET backup_restart_max_attempts = 100; ALTER SYSTEM SET backup_net_limit = '0'").await.unwrap();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    // A task that stored less than backup_checkpoint_min_bytes is not restartable (SPEC §4.4):
    // the kills start once the first checkpoint is there.
    until(
        &client,
        "SELECT count(*) > 0 FROM backstop.task WHERE checkpoint_bytes > 0",
        "t",
        Duration::from_secs(60),
    )
    .await;

    let started = Instant::now();
    let mut kills = 0;
    // Kills that found the task writing: the test is about those, not kills after the end.
    let mut kills_while_writing = 0;
    let mut seed = 7u64;
    while kills < 20 && started.elapsed() < Duration::from_secs(240) {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(30 + (seed >> 33) % 150)).await;
        let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
        if value(&client, "SELECT count(*) FROM cdb_ob_backup_set_files").await == "1" {
            break;
        }
        let writing = value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_tasks WHERE status = 'DOING'",
        )
        .await
            == "1";
        server.kill();
        kills += 1;
        kills_while_writing += u32::from(writing);
        server = ChildServer::start(&data_dir);
        // The next moment is one of the resumed backup: wait for it to run again (or to have
        // finished already, when little was left).
        let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
        until(
            &client,
            "SELECT (SELECT count(*) FROM cdb_ob_backup_tasks WHERE status = 'DOING') \
             + (SELECT count(*) FROM cdb_ob_backup_set_files) > 0",
            "t",
            Duration::from_secs(30),
        )
        .await;
    }
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    // The set is complete a moment before its job reaches the history: wait for the job.
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_job_history WHERE status = 'COMPLETED'",
        "1",
        Duration::from_secs(180),
    )
    .await;
    eprintln!("killed {kills} times, {kills_while_writing} while the task was writing");
    assert!(
        kills >= 20,
        "the backup finished after {kills} kills; make it bigger"
    );
    assert!(
        kills_while_writing * 2 >= kills,
        "only {kills_while_writing} of {kills} kills landed while data was being written"
    );
    let last = value(&client, "SELECT status || '|' || restart_pass || '|' || comment FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 1").await;
    if kills > 0 {
        assert!(
            // A kill between the set's end and its job's end finds every task complete: the
            // restarted server ends the job as COMPLETED with its own words.
            last.starts_with("COMPLETED|")
                && (last.ends_with("|resumed from checkpoint")
                    || last.ends_with("the server stopped as it ended")),
            "{last}"
        );
        let failed = value(
            &client,
            "SELECT count(*) FROM cdb_ob_backup_job_history WHERE comment LIKE 'SERVER_RESTART%'",
        )
        .await;
        assert!(failed.parse::<u32>().unwrap() >= 1);
        let done_before = value(
            &client,
            "SELECT coalesce(max(checkpoint_bytes), 0) FROM backstop.task WHERE status = 'FAILED'",
        )
        .await
        .parse::<u64>()
        .unwrap();
        let read = value(
            &client,
            "SELECT bytes_read FROM backstop.task WHERE status = 'COMPLETED'",
        )
        .await
        .parse::<u64>()
        .unwrap();
        assert!(
            read <= total - done_before.min(total) + total / 50 + (16 << 20),
            "the last run read {read} bytes; {done_before} of {total} were checkpointed before it"
        );
    }
    restore_and_compare(&client, "a", &source, &tmp.path().join("r")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_suspends_a_running_backup_and_the_next_start_resumes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let source = tmp.path().join("a");
    big_tree(&source, 16, 16);
    let mut server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, &[("a", &source)], &tmp.path().join("dest")).await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT a")
        .await
        .unwrap();
    let job = value(&client, "SELECT max(job_id) FROM cdb_ob_backup_jobs").await;
    until(
        &client,
        "SELECT count(*) > 0 FROM backstop.task WHERE checkpoint_bytes > 0",
        "t",
        Duration::from_secs(60),
    )
    .await;
    // One session waits on the job, another is idle: both are told why the server goes away.
    let waiter = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let wait = format!("ALTER SYSTEM WAIT JOB {job}");
    let waiting = tokio::spawn(async move { waiter.batch_execute(&wait).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        value(&client, "SELECT status FROM cdb_ob_backup_jobs").await,
        "DOING",
        "the shutdown must meet a backup that is writing"
    );

    let sent = Instant::now();
    // SAFETY: kill(2) on the child this test started.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) },
        0
    );
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "the server did not exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "a clean shutdown exits 0: {exit:?}");
    // The catalog was closed: its write-ahead log folded into the database file.
    let wal = data_dir.join("catalog.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the catalog's log was left unfolded ({} bytes)",
        std::fs::metadata(&wal).map_or(0, |m| m.len())
    );
    let waited = waiting.await.unwrap().unwrap_err();
    assert_eq!(sqlstate(&waited), "57P01", "{waited:?}");
    let idle = client.simple_query("SELECT 1").await.unwrap_err();
    assert!(
        sqlstate(&idle) == "57P01" || client.is_closed(),
        "an idle session is told or closed: {idle:?}"
    );

    server = ChildServer::start(&data_dir);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    until(
        &client,
        &format!(
            "SELECT count(*) FROM cdb_ob_backup_job_history WHERE job_id = {job} \
             AND status = 'COMPLETED'"
        ),
        "1",
        Duration::from_secs(120),
    )
    .await;
    let row = value(
        &client,
        &format!(
            "SELECT restart_pass || '|' || comment FROM cdb_ob_backup_job_history WHERE job_id = {job}"
        ),
    )
    .await;
    assert!(
        row.starts_with("1|resumed from checkpoint") && row.contains("SERVER_SHUTDOWN"),
        "{row}"
    );
    assert_eq!(
        value(
            &client,
            &format!(
                "SELECT min(restart_pass) FROM cdb_ob_backup_task_history WHERE job_id = {job}"
            )
        )
        .await,
        "1",
        "the resumed task shows its pass too"
    );
    // Only one set, made by the one job, whose resumed run skipped what was stored before.
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_set_files").await,
        "1"
    );
    restore_and_compare(&client, "a", &source, &tmp.path().join("r")).await;
}
