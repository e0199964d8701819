//! Archive log through the wire (SPEC §2.3, §4.2): rounds start, cut pieces, defer, resume and
//! stop while an application writes segments; `archive-push` and `archive-get` as PostgreSQL
//! would call them; a gap interrupts the round; kill -9 loses no acknowledged segment. Every
//! segment that comes back is compared byte for byte with the one written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::tree::noise;
use common::{ADMIN_PASSWORD, ChildServer, connect_as, sqlstate, until, value};
use tokio_postgres::Client;

/// An application writing numbered segments into `folder` every `every` until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(folder: &Path, every: Duration) -> Writer {
        let (stop, written) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (folder, s, w) = (folder.to_path_buf(), stop.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most 2000 segments.
            for i in 1..=2000u64 {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                std::fs::write(folder.join(segment_name(i)), segment_bytes(i)).unwrap();
                w.store(i, Ordering::SeqCst);
                std::thread::sleep(every);
            }
        });
        Writer {
            stop,
            written,
            thread: Some(thread),
        }
    }

    /// Stops writing; returns how many segments were written.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
        self.written.load(Ordering::SeqCst)
    }
}

fn segment_name(i: u64) -> String {
    format!("seg{i:06}")
}

fn segment_bytes(i: u64) -> Vec<u8> {
    let mut bytes = format!("segment {i}\n").repeat(2000).into_bytes();
    bytes.extend(noise(i, 4096));
    bytes
}

fn backstop(port: u16, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_backstop"))
        .args(args)
        .args(["--port", &port.to_string()])
        .env("BACKSTOP_PASSWORD", ADMIN_PASSWORD)
        .env("BACKSTOP_LOG", "warn")
        .output()
        .expect("backstop runs")
}

/// Fetches every segment in `1..=n` with `archive-get` and compares it with what was written.
fn assert_archive_holds(port: u16, tenant: &str, n: u64, scratch: &Path) {
    for i in 1..=n {
        let to = scratch.join(format!("got-{i}"));
        let out = backstop(
            port,
            &[
                "archive-get",
                "--tenant",
                tenant,
                &segment_name(i),
                to.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "archive-get {}: {}",
            segment_name(i),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&to).unwrap(), segment_bytes(i), "segment {i}");
        std::fs::remove_file(to).unwrap();
    }
}

async fn setup(client: &Client, root: &Path, binding: &str) -> PathBuf {
    let (source, log, arch) = (root.join("source"), root.join("log"), root.join("arch"));
    for d in [&source, &log, &arch] {
        std::fs::create_dir_all(d).unwrap();
    }
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}' LOG_SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://{} BINDING={binding} PIECE_SWITCH_INTERVAL=1s'; \
             ALTER SYSTEM SET log_segment_quiet_time = '200ms'",
            source.display(),
            log.display(),
            arch.display()
        ))
        .await
        .unwrap();
    log
}

async fn round_status(client: &Client) -> String {
    value(
        client,
        "SELECT status FROM cdb_ob_archivelog WHERE tenant_id = 1001",
    )
    .await
}

async fn archived(client: &Client) -> u64 {
    value(client, "SELECT count(*) FROM backstop.archive_segment")
        .await
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rounds_ship_segments_in_pieces_through_defer_enable_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    let err = client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    assert!(
        err.as_db_error()
            .unwrap()
            .detail()
            .unwrap()
            .contains("9024")
    );

    let writer = Writer::start(&log, Duration::from_millis(40));
    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "DOING",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT log_mode FROM dba_ob_tenants WHERE tenant_name = 'app'"
        )
        .await,
        "ARCHIVELOG"
    );
    let err = client
        .batch_execute("ALTER SYSTEM ARCHIVELOG TENANT = app")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    assert!(
        err.as_db_error()
            .unwrap()
            .detail()
            .unwrap()
            .contains("9023")
    );

    // Pieces switch every second: at least one freezes while the writer goes on.
    until(
        &client,
        "SELECT count(*) > 0 FROM cdb_ob_archivelog_piece_files WHERE status = 'FROZEN'",
        "t",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE status = 'ACTIVE'"
        )
        .await,
        "1"
    );

    // DEFER: the round suspends and nothing more is shipped; ENABLE: it goes on.
    client
        .batch_execute("ALTER SYSTEM SET LOG_ARCHIVE_DEST_STATE = 'DEFER'")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "SUSPEND",
        Duration::from_secs(30),
    )
    .await;
    let during = archived(&client).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        archived(&client).await,
        during,
        "nothing is shipped while deferred"
    );
    client
        .batch_execute("ALTER SYSTEM SET LOG_ARCHIVE_DEST_STATE = 'ENABLE'")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "DOING",
        Duration::from_secs(30),
    )
    .await;

    let written = writer.stop();
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        &written.to_string(),
        Duration::from_secs(30),
    )
    .await;
    // Counters add up: every byte written is in the round and in its pieces.
    let total: u64 = (1..=written).map(|i| segment_bytes(i).len() as u64).sum();
    assert_eq!(
        value(&client, "SELECT input_bytes FROM cdb_ob_archivelog").await,
        total.to_string()
    );
    assert_eq!(
        value(
            &client,
            "SELECT sum(input_bytes) FROM cdb_ob_archivelog_piece_files"
        )
        .await,
        total.to_string()
    );
    assert_eq!(round_status(&client).await, "DOING");

    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG TENANT = app")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "STOP",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE status <> 'FROZEN'"
        )
        .await,
        "0"
    );
    assert_eq!(
        value(
            &client,
            "SELECT log_mode FROM dba_ob_tenants WHERE tenant_name = 'app'"
        )
        .await,
        "NOARCHIVELOG"
    );
    assert_archive_holds(server.port, "app", written, tmp.path());

    // A new round numbers on from the last.
    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG TENANT = app")
        .await
        .unwrap();
    until(
        &client,
        "SELECT round_id || ' ' || status FROM cdb_ob_archivelog",
        "2 DOING",
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_segment_interrupts_the_round_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    for i in [1, 2, 4] {
        std::fs::write(log.join(segment_name(i)), segment_bytes(i)).unwrap();
    }
    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "INTERRUPTED",
        Duration::from_secs(30),
    )
    .await;
    let comment = value(&client, "SELECT comment FROM cdb_ob_archivelog").await;
    assert!(
        comment.contains("seg000003") && comment.contains("gap"),
        "{comment}"
    );
    // The round stays INTERRUPTED and keeps shipping what comes after the gap.
    std::fs::write(log.join(segment_name(5)), segment_bytes(5)).unwrap();
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        "4",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(round_status(&client).await, "INTERRUPTED");
    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "STOP",
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_push_answers_by_the_binding_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, tmp.path(), "MANDATORY").await;
    // PostgreSQL's own WAL folder: the tenant's log source is not used by archive-push.
    let wal = tmp.path().join("pg_wal");
    std::fs::create_dir_all(&wal).unwrap();
    for i in 1..=3 {
        std::fs::write(wal.join(segment_name(i)), segment_bytes(i)).unwrap();
    }
    let push = |i: u64| {
        backstop(
            server.port,
            &[
                "archive-push",
                "--tenant",
                "app",
                wal.join(segment_name(i)).to_str().unwrap(),
            ],
        )
    };

    // MANDATORY and no round: refused, so PostgreSQL keeps the segment and retries.
    let out = push(1);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not archived") && stderr.contains("MANDATORY"),
        "{stderr}"
    );

    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG TENANT = app")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "DOING",
        Duration::from_secs(30),
    )
    .await;
    for i in 1..=3 {
        let out = push(i);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The same segment again is acknowledged again; another with its name is refused.
    assert!(push(2).status.success());
    std::fs::write(wal.join(segment_name(2)), b"something else").unwrap();
    let out = push(2);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("different content"));
    std::fs::write(wal.join(segment_name(2)), segment_bytes(2)).unwrap();
    assert_archive_holds(server.port, "app", 3, tmp.path());
    let out = backstop(
        server.port,
        &[
            "archive-get",
            "--tenant",
            "app",
            "seg000099",
            tmp.path().join("x").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("42704"));

    // OPTIONAL: with archiving off, the source may go on, and is told so.
    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "STOP",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://{} BINDING=OPTIONAL'",
            tmp.path().join("arch").display()
        ))
        .await
        .unwrap();
    std::fs::write(wal.join(segment_name(4)), segment_bytes(4)).unwrap();
    let out = push(4);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not archived"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_acknowledged_segment_is_lost_across_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let server = ChildServer::start(&data);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    let writer = Writer::start(&log, Duration::from_millis(20));
    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG")
        .await
        .unwrap();
    let mut server = Some(server);
    for round in 0..3 {
        let running = server.take().unwrap();
        let client = connect_as(running.port, "admin", ADMIN_PASSWORD).await;
        until(
            &client,
            "SELECT count(*) > 0 FROM backstop.archive_segment",
            "t",
            Duration::from_secs(30),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(150 + round * 170)).await;
        let before = archived(&client).await;
        running.kill();
        let restarted = ChildServer::start(&data);
        let client = connect_as(restarted.port, "admin", ADMIN_PASSWORD).await;
        assert!(
            archived(&client).await >= before,
            "acknowledged segments survive"
        );
        // Every segment the catalog acknowledged is in the archive, whole.
        assert_archive_holds(restarted.port, "app", before, tmp.path());
        server = Some(restarted);
    }
    let written = writer.stop();
    let server = server.unwrap();
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        &written.to_string(),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(round_status(&client).await, "DOING");
    assert_archive_holds(server.port, "app", written, tmp.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_until_time_brings_back_exactly_the_segments_closed_by_then() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    let source = tmp.path().join("source");
    common::tree::fidelity_tree(&source.join("tree"));
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; ALTER SYSTEM BACKUP TENANT app WAIT; \
             ALTER SYSTEM ARCHIVELOG",
            tmp.path().join("backup").display()
        ))
        .await
        .unwrap();
    // Ten segments closed one second apart, after the backup; an eleventh still being written.
    let base = std::time::SystemTime::now() + Duration::from_secs(60);
    for i in 1..=11u64 {
        let path = log.join(segment_name(i));
        std::fs::write(&path, segment_bytes(i)).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(base + Duration::from_secs(i)).unwrap();
    }
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        "10",
        Duration::from_secs(30),
    )
    .await;

    let until_time: chrono::DateTime<chrono::Utc> = (base + Duration::from_millis(5_500)).into();
    let restore = |name: &str, target: &str| {
        format!(
            "ALTER SYSTEM RESTORE {name} FROM app UNTIL TIME = '{}' TO 'dir://{}' WAIT",
            until_time.format("%Y-%m-%d %H:%M:%S%.6f"),
            tmp.path().join(target).display()
        )
    };
    client.batch_execute(&restore("r", "target")).await.unwrap();
    common::tree::assert_same_tree(&source, &tmp.path().join("target"));
    let restored_log = tmp.path().join("target.log");
    let mut names: Vec<String> = std::fs::read_dir(&restored_log)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, (1..=5).map(segment_name).collect::<Vec<_>>());
    for i in 1..=5 {
        assert_eq!(
            std::fs::read(restored_log.join(segment_name(i))).unwrap(),
            segment_bytes(i)
        );
    }
    assert_eq!(
        value(
            &client,
            "SELECT log_source FROM dba_ob_tenants WHERE tenant_name = 'r'"
        )
        .await,
        format!("dir://{}", restored_log.display())
    );

    // A segment lost from the archive: the restore is refused before anything is written,
    // naming it.
    std::fs::remove_file(tmp.path().join("arch/archive/1001").join(segment_name(3))).unwrap();
    common::assert_refused(
        &client,
        &restore("r2", "target2"),
        "XX001",
        &segment_name(3),
    )
    .await;
    assert!(!tmp.path().join("target2").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_set_made_plus_archivelog_restores_with_its_log_on_a_new_server() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    let source = tmp.path().join("source");
    common::tree::fidelity_tree(&source.join("tree"));
    let backup = tmp.path().join("backup");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'",
            backup.display()
        ))
        .await
        .unwrap();
    // No archive round at all: the set keeps its own log.
    for i in 1..=3 {
        std::fs::write(log.join(segment_name(i)), segment_bytes(i)).unwrap();
    }
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app PLUS ARCHIVELOG WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT plus_archivelog FROM cdb_ob_backup_job_history"
        )
        .await,
        "ON"
    );
    // A tenant without a log source cannot.
    client
        .batch_execute(&format!(
            "CREATE TENANT plain SOURCE = 'dir://{}'",
            source.display()
        ))
        .await
        .unwrap();
    let err = client
        .batch_execute("ALTER SYSTEM BACKUP TENANT plain PLUS ARCHIVELOG")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "55000");
    // Its copy at a second destination takes the kept log along.
    let offsite = tmp.path().join("offsite");
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM BACKUP BACKUPSET ALL WAIT",
            offsite.display()
        ))
        .await
        .unwrap();
    drop(server);

    // A new server that knows nothing restores the set and its log from the destination, and
    // from the copy.
    let fresh = ChildServer::start(&tmp.path().join("fresh"));
    let client = connect_as(fresh.port, "admin", ADMIN_PASSWORD).await;
    for (name, at) in [("target", &backup), ("from_copy", &offsite)] {
        let target = tmp.path().join(name);
        client
            .batch_execute(&format!(
                "ALTER SYSTEM RESTORE {name} FROM app AT 'file://{}' TO 'dir://{}' WAIT",
                at.display(),
                target.display()
            ))
            .await
            .unwrap();
        common::tree::assert_same_tree(&source, &target);
        for i in 1..=3 {
            assert_eq!(
                std::fs::read(tmp.path().join(format!("{name}.log")).join(segment_name(i)))
                    .unwrap(),
                segment_bytes(i),
                "segment {i} restored from {}",
                at.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validating_a_piece_finds_a_damaged_segment_and_marks_the_piece_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    for i in 1..=3 {
        std::fs::write(log.join(segment_name(i)), segment_bytes(i)).unwrap();
    }
    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG")
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        "3",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM NOARCHIVELOG WAIT")
        .await
        .unwrap();
    let piece = value(
        &client,
        "SELECT piece_id FROM backstop.archive_segment WHERE name = 'seg000001'",
    )
    .await;

    client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE = {piece} LEVEL = 'physical' WAIT"
        ))
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT status || ' ' || type || ' ' || level || ' ' || backup_piece_id \
             FROM cdb_ob_backup_validate_job_history"
        )
        .await,
        format!("COMPLETED ARCHIVELOG_PIECE physical {piece}")
    );
    assert_eq!(
        value(
            &client,
            &format!(
                "SELECT file_status FROM cdb_ob_archivelog_piece_files WHERE piece_id = {piece}"
            )
        )
        .await,
        "AVAILABLE"
    );

    // A flipped byte in the payload: the basic level sees sizes and headers only, the physical
    // level reads every byte and names the damaged object.
    let object = tmp.path().join("arch/archive/1001/seg000001");
    let mut bytes = std::fs::read(&object).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE {piece} WAIT"
        ))
        .await
        .unwrap();
    let e = client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE {piece} LEVEL = 'physical' WAIT"
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "XX001", "{e:?}");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(message.contains("archive/1001/seg000001"), "{message}");
    assert_eq!(
        value(
            &client,
            &format!(
                "SELECT file_status FROM cdb_ob_archivelog_piece_files WHERE piece_id = {piece}"
            )
        )
        .await,
        "BROKEN"
    );

    // A segment gone from the archive: even the basic level names it, and its piece is BROKEN.
    let piece2 = value(
        &client,
        "SELECT piece_id FROM backstop.archive_segment WHERE name = 'seg000002'",
    )
    .await;
    std::fs::remove_file(tmp.path().join("arch/archive/1001/seg000002")).unwrap();
    let e = client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE {piece2} WAIT"
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "XX001", "{e:?}");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("seg000002") && message.contains("missing"),
        "{message}"
    );
    assert_eq!(
        value(
            &client,
            &format!(
                "SELECT file_status FROM cdb_ob_archivelog_piece_files WHERE piece_id = {piece2}"
            )
        )
        .await,
        "BROKEN"
    );

    let e = client
        .batch_execute("ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE 9999")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704", "{e:?}");
    let e = client
        .batch_execute(&format!(
            "ALTER SYSTEM VALIDATE ARCHIVELOG_PIECE {piece} AT 'file:///nowhere'"
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704", "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gap_in_pushed_wal_interrupts_the_round_naming_the_missing_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    setup(&client, tmp.path(), "OPTIONAL").await;
    client
        .batch_execute("ALTER SYSTEM ARCHIVELOG TENANT = app")
        .await
        .unwrap();
    until(
        &client,
        "SELECT status FROM cdb_ob_archivelog",
        "DOING",
        Duration::from_secs(30),
    )
    .await;
    // WAL segments of 1 MiB (initdb --wal-segsize=1): the low half wraps after FFF.
    let wal = tmp.path().join("pg_wal");
    std::fs::create_dir_all(&wal).unwrap();
    let push = |name: &str| {
        let path = wal.join(name);
        let mut bytes = name.repeat(1 << 20 >> 4).into_bytes();
        bytes.truncate(1 << 20);
        bytes.resize(1 << 20, 0);
        std::fs::write(&path, bytes).unwrap();
        let out = backstop(
            server.port,
            &["archive-push", "--tenant", "app", path.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for name in [
        "000000010000000000000FFE",
        "000000010000000000000FFF",
        "000000010000000100000000",
        "000000010000000100000000.00000028.backup",
        "000000010000000100000001",
    ] {
        push(name);
    }
    assert_eq!(round_status(&client).await, "DOING");
    push("000000010000000100000004");
    assert_eq!(round_status(&client).await, "INTERRUPTED");
    let comment = value(&client, "SELECT comment FROM cdb_ob_archivelog").await;
    assert!(
        comment.contains("000000010000000100000002, 000000010000000100000003")
            && comment.contains("gap"),
        "{comment}"
    );
    // Archiving goes on after the gap; a new timeline after a promotion is not a gap.
    push("000000010000000100000005");
    push("00000002.history");
    push("000000020000000100000009");
    assert_eq!(archived(&client).await, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn pieces_are_deleted_in_order_and_never_one_a_kept_set_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ChildServer::start(&tmp.path().join("data"));
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    let log = setup(&client, tmp.path(), "OPTIONAL").await;
    std::fs::write(tmp.path().join("source/data"), noise(7, 1 << 20)).unwrap();
    let writer = Writer::start(&log, Duration::from_millis(40));
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; ALTER SYSTEM ARCHIVELOG",
            tmp.path().join("backup").display()
        ))
        .await
        .unwrap();
    // Two pieces frozen before the set, then the set, then more log.
    until(
        &client,
        "SELECT count(*) >= 2 FROM cdb_ob_archivelog_piece_files WHERE status = 'FROZEN' \
         AND file_count > 0",
        "t",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();
    let set_start = value(
        &client,
        "SELECT CAST(date_part('epoch', start_timestamp) * 1e9 AS BIGINT) FROM cdb_ob_backup_set_files",
    )
    .await;
    until(
        &client,
        &format!(
            "SELECT count(*) > 0 FROM cdb_ob_archivelog_piece_files WHERE status = 'FROZEN' \
             AND start_scn > {set_start}"
        ),
        "t",
        Duration::from_secs(30),
    )
    .await;
    // Every segment written is archived before anything is counted.
    let written = writer.stop();
    until(
        &client,
        "SELECT count(*) FROM backstop.archive_segment",
        &written.to_string(),
        Duration::from_secs(30),
    )
    .await;
    let (first, second) = (
        value(
            &client,
            "SELECT min(piece_id) FROM cdb_ob_archivelog_piece_files",
        )
        .await,
        value(
            &client,
            "SELECT min(piece_id) FROM cdb_ob_archivelog_piece_files WHERE piece_id > \
             (SELECT min(piece_id) FROM cdb_ob_archivelog_piece_files)",
        )
        .await,
    );
    let needed = value(
        &client,
        &format!(
            "SELECT min(piece_id) FROM cdb_ob_archivelog_piece_files WHERE checkpoint_scn >= {set_start}"
        ),
    )
    .await;
    let active = value(
        &client,
        "SELECT piece_id FROM cdb_ob_archivelog_piece_files WHERE status = 'ACTIVE'",
    )
    .await;

    common::assert_refused(
        &client,
        &format!("ALTER SYSTEM DELETE BACKUPPIECE {second}"),
        "55000",
        &format!("delete piece {first} first"),
    )
    .await;
    common::assert_refused(
        &client,
        &format!("ALTER SYSTEM DELETE BACKUPPIECE {active}"),
        "55000",
        "only a frozen piece",
    )
    .await;
    common::assert_refused(
        &client,
        "ALTER SYSTEM DELETE BACKUPPIECE 999",
        "42704",
        "999",
    )
    .await;

    // The pieces before the set go, oldest first; the first one the set needs stays.
    let segments_of = |piece: &str| {
        format!("SELECT count(*) FROM backstop.archive_segment WHERE piece_id = {piece}")
    };
    let first_count: usize = value(&client, &segments_of(&first)).await.parse().unwrap();
    assert!(first_count > 0);
    let files = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let arch = tmp.path().join("arch/archive/1001");
    let before = files(&arch);
    let next: i64 = first.parse().unwrap();
    let needed: i64 = needed.parse().unwrap();
    for piece in next..needed {
        client
            .batch_execute(&format!(
                "ALTER SYSTEM DELETE ARCHIVELOG_PIECE {piece} WAIT"
            ))
            .await
            .unwrap();
    }
    assert!(
        needed > next,
        "at least one piece ended before the set began"
    );
    common::assert_refused(
        &client,
        &format!("ALTER SYSTEM DELETE BACKUPPIECE {needed}"),
        "55000",
        "holds log that backup set 1 needs",
    )
    .await;
    assert_eq!(
        value(
            &client,
            &format!(
                "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE file_status = 'DELETED' \
                 AND piece_id < {needed}"
            )
        )
        .await,
        value(
            &client,
            &format!(
                "SELECT count(*) FROM cdb_ob_archivelog_piece_files WHERE piece_id < {needed}"
            )
        )
        .await
    );
    let gone: usize = value(
        &client,
        &format!("SELECT count(*) FROM backstop.archive_segment WHERE piece_id < {needed}"),
    )
    .await
    .parse()
    .unwrap();
    assert_eq!(
        files(&arch),
        before - gone,
        "the deleted pieces' segments left the archive"
    );
    assert_eq!(
        value(
            &client,
            "SELECT task_type || ' ' || id || ' ' || status FROM oceanbase.cdb_ob_backup_delete_task_history \
             ORDER BY task_id LIMIT 1"
        )
        .await,
        format!("BACKUP PIECE {first} COMPLETED")
    );

    // The set restores with the log it needs, up to now.
    let now = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE r FROM app UNTIL TIME = '{now}' TO 'dir://{}' WAIT",
            tmp.path().join("target").display()
        ))
        .await
        .unwrap();
    common::tree::assert_same_tree(&tmp.path().join("source"), &tmp.path().join("target"));
    let restored = files(&tmp.path().join("target.log"));
    let kept: usize = value(
        &client,
        &format!("SELECT count(*) FROM backstop.archive_segment WHERE piece_id >= {needed}"),
    )
    .await
    .parse()
    .unwrap();
    assert_eq!(
        restored, kept,
        "every segment of the kept pieces comes back, none of the deleted"
    );
}
