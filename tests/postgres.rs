//! PostgreSQL tenants against a real PostgreSQL: registration checks, online backups while
//! pgbench writes, WAL archiving over the wire, point-in-time restores that PostgreSQL recovers
//! from (rows committed before the target and none after, amcheck clean), tablespaces,
//! incremental sets, delta restores, damaged pages, and the backup mode released on cancel and
//! on a kill -9 of backstop.

mod common;

use std::time::Duration;

use common::pg::{Cluster, as_postgres, give_to_postgres, tool};
use common::{ChildServer, TestServer, assert_refused, connect_as, sqlstate, until, value};
use tokio_postgres::Client;

const MINUTE: Duration = Duration::from_secs(60);

/// Destinations under `root`, archive log on for tenant `pg` registered on `cluster`.
async fn protect(backstop: &Client, cluster: &Cluster, root: &std::path::Path) {
    let (exe, password) = tool();
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{root}/backup';
             ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION=file://{root}/archive';
             ALTER SYSTEM SET pg_tool_path = '{exe}';
             ALTER SYSTEM SET pg_tool_password_file = '{password}';
             CREATE TENANT pg SOURCE = '{uri}' PGDATA = '{data}';
             ALTER SYSTEM ARCHIVELOG TENANT = pg",
            root = root.display(),
            exe = exe.display(),
            password = password.display(),
            uri = cluster.uri(),
            data = cluster.data.display(),
        ))
        .await
        .unwrap();
    until(
        backstop,
        "SELECT status FROM oceanbase.cdb_ob_archivelog WHERE tenant_id > 1",
        "DOING",
        MINUTE,
    )
    .await;
}

/// A backstop server, and a started cluster registered on it as tenant `pg`, archiving, with
/// destinations under the cluster's folder.
async fn protected_cluster() -> (TestServer, Client, Cluster) {
    let server = TestServer::start().await;
    let backstop = server.connect().await;
    let cluster = started_cluster(server.port()).await;
    protect(&backstop, &cluster, &cluster.root.clone()).await;
    (server, backstop, cluster)
}

/// A cluster with data checksums, archiving to tenant `pg` of the backstop at `port`, started,
/// with a ledger table (one row per committed transaction, with its time).
async fn started_cluster(port: u16) -> Cluster {
    let mut cluster = Cluster::init(true);
    cluster.archive_to(port, "pg");
    cluster.start();
    fill(&cluster, "2").await;
    cluster
}

/// The ledger table, and pgbench's tables at `scale`.
async fn fill(cluster: &Cluster, scale: &str) {
    cluster
        .client()
        .await
        .batch_execute(
            "CREATE TABLE ledger (id bigint PRIMARY KEY, note text NOT NULL, \
             at timestamptz NOT NULL DEFAULT clock_timestamp())",
        )
        .await
        .unwrap();
    cluster.pgbench(&["-i", "-q", "-s", scale]);
}

/// Inserts ledger rows `from..to`, each its own transaction.
async fn write_ledger(client: &Client, from: i64, to: i64) {
    for id in from..to {
        client
            .execute(
                "INSERT INTO ledger (id, note) VALUES ($1, 'row ' || $1::bigint::text)",
                &[&id],
            )
            .await
            .unwrap();
    }
}

async fn ledger_ids(client: &Client) -> Vec<i64> {
    client
        .query("SELECT id FROM ledger ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Forces a WAL switch and waits until PostgreSQL has archived the segment it closed.
async fn archive_current_wal(client: &Client) {
    let closed: String = client
        .query_one("SELECT pg_walfile_name(pg_switch_wal())", &[])
        .await
        .unwrap()
        .get(0);
    for _ in 0..600 {
        let last: Option<String> = client
            .query_one("SELECT last_archived_wal FROM pg_stat_archiver", &[])
            .await
            .unwrap()
            .get(0);
        if last.is_some_and(|l| l.as_str() >= closed.as_str()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("segment {closed} was not archived within 60 s");
}

/// The newest completed set of tenant pg.
async fn newest_set(backstop: &Client) -> String {
    value(
        backstop,
        "SELECT max(s.backup_set_id) FROM oceanbase.cdb_ob_backup_set_files s \
         JOIN oceanbase.dba_ob_tenants t ON s.tenant_id = t.tenant_id \
         WHERE t.tenant_name = 'pg' AND s.status = 'COMPLETED'",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_checks_the_cluster_and_shows_what_it_is() {
    let server = TestServer::start().await;
    let backstop = server.connect().await;
    let mut cluster = Cluster::init(true);
    cluster.configure("wal_level = replica");
    cluster.start();
    let other = Cluster::init(false);

    // The data directory of another cluster: named by its system identifier.
    assert_refused(
        &backstop,
        &format!(
            "CREATE TENANT pg SOURCE = '{}' PGDATA = '{}'",
            cluster.uri(),
            other.data.display()
        ),
        "55000",
        "belongs to system",
    )
    .await;
    // Nobody listening: 08001, and the password never shows.
    let err = backstop
        .batch_execute(&format!(
            "CREATE TENANT pg SOURCE = 'postgres://postgres:hunter2@127.0.0.1:{}/postgres' \
             PGDATA = '{}'",
            other.port,
            other.data.display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "08001", "{err:?}");
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(!message.contains("hunter2"), "{message}");

    backstop
        .batch_execute(&format!(
            "CREATE TENANT pg SOURCE = '{}' PGDATA = '{}'",
            cluster.uri(),
            cluster.data.display()
        ))
        .await
        .unwrap();
    let client = cluster.client().await;
    let (version, sysid): (String, String) = {
        let row = client
            .query_one(
                "SELECT current_setting('server_version'), \
                 (SELECT system_identifier::text FROM pg_control_system())",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        value(
            &backstop,
            "SELECT pg_version || '|' || system_identifier || '|' || archive_mode || '|' || \
             data_checksums FROM oceanbase.dba_ob_tenants WHERE tenant_name = 'pg'"
        )
        .await,
        format!("{version}|{sysid}|off|on")
    );

    // wal_level = minimal is named, with what to do.
    let mut minimal = Cluster::init(false);
    minimal.configure("wal_level = minimal\nmax_wal_senders = 0");
    minimal.start();
    assert_refused(
        &backstop,
        &format!(
            "CREATE TENANT pg2 SOURCE = '{}' PGDATA = '{}'",
            minimal.uri(),
            minimal.data.display()
        ),
        "55000",
        "wal_level is minimal",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn point_in_time_restore_brings_back_exactly_what_was_committed_before_the_target() {
    let (_server, backstop, mut cluster) = protected_cluster().await;
    let client = cluster.client().await;
    write_ledger(&client, 0, 50).await;

    // pgbench and the ledger write while the backup copies.
    let writer = {
        let port = cluster.port;
        std::thread::spawn(move || {
            let status = std::process::Command::new("pgbench")
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                .args(["-T", "4", "-c", "2", "postgres"])
                .output()
                .expect("pgbench runs");
            assert!(status.status.success(), "{status:?}");
        })
    };
    let backup = backstop.batch_execute("ALTER SYSTEM BACKUP TENANT = pg WAIT");
    let ledger = write_ledger(&client, 50, 150);
    let (backed_up, ()) = tokio::join!(backup, ledger);
    backed_up.unwrap();
    writer.join().unwrap();
    let set = newest_set(&backstop).await;
    assert_ne!(set, "NULL", "a set was recorded");
    wait_sessions(&cluster, 0).await;

    write_ledger(&client, 150, 200).await;
    let target: String = client
        .query_one(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_ledger(&client, 200, 260).await;
    archive_current_wal(&client).await;

    let restored = cluster.root.join("restored");
    // PREVIEW names the set, then every WAL segment recovery will replay.
    let preview: Vec<(String, Option<String>)> = backstop
        .simple_query(&format!(
            "ALTER SYSTEM RESTORE FROM pg UNTIL TIME = '{target}' PREVIEW"
        ))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                r.get("backup_type").unwrap().to_string(),
                r.get("wal_segment").map(str::to_string),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(preview[0], ("FULL".to_string(), None));
    let wal: Vec<String> = preview[1..].iter().filter_map(|(_, w)| w.clone()).collect();
    assert_eq!(wal.len(), preview.len() - 1, "{preview:?}");
    let last_wal = wal.last().expect("WAL to replay").clone();
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE pgr FROM pg UNTIL TIME = '{target}' TO 'dir://{}' WAIT",
            restored.display()
        ))
        .await
        .unwrap();
    let auto = std::fs::read_to_string(restored.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_time"), "{auto}");
    assert!(restored.join("backup_label").is_file());
    assert!(restored.join("recovery.signal").is_file());
    assert!(
        std::fs::read_dir(restored.join("pg_wal"))
            .unwrap()
            .filter_map(Result::ok)
            .all(|e| e.file_type().unwrap().is_dir()),
        "no WAL segment is restored: recovery fetches them from the archive"
    );
    let copy = Cluster::recovered(&cluster.root, &restored).await;
    let recovered = copy.client().await;
    assert_eq!(
        ledger_ids(&recovered).await,
        (0..200).collect::<Vec<i64>>(),
        "exactly the rows committed before {target}"
    );
    assert!(
        copy.log()
            .contains(&format!("restored log file \"{last_wal}\" from archive")),
        "recovery replayed up to the last segment PREVIEW named ({last_wal}):\n{}",
        copy.log()
    );
    let accounts: i64 = recovered
        .query_one("SELECT count(*) FROM pgbench_accounts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(accounts, 200_000);
    copy.amcheck().await;

    // A new server that knows nothing restores the same point from the destinations alone:
    // the restored cluster fetches its WAL through `archive-get --at`.
    {
        let fresh = TestServer::start().await;
        let lost = fresh.connect().await;
        let (exe, password) = tool();
        let again = cluster.root.join("restored-elsewhere");
        lost.batch_execute(&format!(
            "ALTER SYSTEM SET pg_tool_path = '{}';
             ALTER SYSTEM SET pg_tool_password_file = '{}';
             ALTER SYSTEM RESTORE pg FROM pg AT 'file://{root}/backup,file://{root}/archive'
                 UNTIL TIME = '{target}' TO 'dir://{}' WAIT",
            exe.display(),
            password.display(),
            again.display(),
            root = cluster.root.display(),
        ))
        .await
        .unwrap();
        let elsewhere = Cluster::recovered(&cluster.root, &again).await;
        assert_eq!(
            ledger_ids(&elsewhere.client().await).await,
            (0..200).collect::<Vec<i64>>()
        );
    }

    // The restored cluster archives its new timeline into the same tenant, not as a gap.
    recovered
        .batch_execute("CREATE TABLE after_promotion AS SELECT 1 AS x")
        .await
        .unwrap();
    archive_current_wal(&recovered).await;
    until(
        &backstop,
        "SELECT count(*) FROM backstop.archive_segment WHERE name = '00000002.history'",
        "1",
        MINUTE,
    )
    .await;
    assert_eq!(
        value(
            &backstop,
            "SELECT status FROM oceanbase.cdb_ob_archivelog WHERE tenant_id > 1"
        )
        .await,
        "DOING"
    );
    drop(copy);
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incremental_sets_tablespaces_and_delta_restores_come_back_whole() {
    let server = TestServer::start().await;
    let backstop = server.connect().await;
    let mut cluster = started_cluster(server.port()).await;
    let root = cluster.root.clone();
    // A directory tenant too: BACKUP DATABASE takes both in one job.
    let files = root.join("files");
    std::fs::create_dir_all(files.join("etc")).unwrap();
    std::fs::write(files.join("etc/app.conf"), "threads = 4\n").unwrap();
    protect(&backstop, &cluster, &root).await;
    backstop
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'",
            files.display()
        ))
        .await
        .unwrap();
    let space = root.join("space");
    std::fs::create_dir_all(&space).unwrap();
    give_to_postgres(&space);
    let client = cluster.client().await;
    client
        .batch_execute(&format!(
            "CREATE TABLESPACE outside LOCATION '{}'",
            space.display()
        ))
        .await
        .unwrap();
    client
        .batch_execute(
            "CREATE TABLE far (id int PRIMARY KEY, pad text) TABLESPACE outside;
             INSERT INTO far SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;",
        )
        .await
        .unwrap();
    let oid: u32 = client
        .query_one(
            "SELECT oid FROM pg_tablespace WHERE spcname = 'outside'",
            &[],
        )
        .await
        .unwrap()
        .get(0);

    backstop
        .batch_execute("ALTER SYSTEM BACKUP DATABASE WAIT")
        .await
        .unwrap();
    assert_eq!(
        value(
            &backstop,
            "SELECT count(*) || '/' || min(status) FROM oceanbase.cdb_ob_backup_set_files"
        )
        .await,
        "2/COMPLETED",
        "one set per tenant, from one job"
    );
    client
        .batch_execute(
            "UPDATE far SET pad = 'changed' WHERE id <= 100; INSERT INTO far VALUES (9001, 'new')",
        )
        .await
        .unwrap();
    write_ledger(&client, 0, 20).await;
    backstop
        .batch_execute("ALTER SYSTEM BACKUP INCREMENTAL TENANT = pg WAIT")
        .await
        .unwrap();
    let inc = newest_set(&backstop).await;
    assert_eq!(
        value(
            &backstop,
            &format!(
                "SELECT backup_type FROM oceanbase.cdb_ob_backup_set_files WHERE backup_set_id = {inc}"
            )
        )
        .await,
        "INC"
    );
    // After the set: none of this is in it.
    write_ledger(&client, 20, 40).await;
    client
        .batch_execute("DELETE FROM far WHERE id > 4000")
        .await
        .unwrap();
    archive_current_wal(&client).await;

    let restored = root.join("restored");
    let moved = root.join("space2");
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE pgr FROM pg UNTIL BACKUPSET = {inc} TO 'dir://{}' \
             WITH 'tablespace_map={oid}={}' WAIT",
            restored.display(),
            moved.display()
        ))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_link(restored.join(format!("pg_tblspc/{oid}"))).unwrap(),
        moved
    );
    let check = |client: Client| async move {
        assert_eq!(ledger_ids(&client).await, (0..20).collect::<Vec<i64>>());
        let far: (i64, i64, i64) = {
            let row = client
                .query_one(
                    "SELECT count(*), count(*) FILTER (WHERE pad = 'changed'), \
                     count(*) FILTER (WHERE id = 9001) FROM far",
                    &[],
                )
                .await
                .unwrap();
            (row.get(0), row.get(1), row.get(2))
        };
        assert_eq!(far, (5001, 100, 1));
    };
    {
        let mut copy = Cluster::recovered(&root, &restored).await;
        check(copy.client().await).await;
        copy.amcheck().await;
        // The restored cluster moves on; a delta restore brings it back to the set.
        let moved_on = copy.client().await;
        moved_on
            .batch_execute(
                "INSERT INTO ledger (id, note) VALUES (777, 'later'); TRUNCATE far; CHECKPOINT",
            )
            .await
            .unwrap();
        copy.stop();
    }
    // The directory tenant's set restores alongside, byte for byte.
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE app2 FROM app TO 'dir://{}' WAIT",
            root.join("files2").display()
        ))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("files2/etc/app.conf")).unwrap(),
        b"threads = 4\n"
    );
    std::fs::remove_dir_all(&moved).unwrap();
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE pgr2 FROM pg UNTIL BACKUPSET = {inc} TO 'dir://{}' \
             WITH 'method=delta&tablespace_map={oid}={}' WAIT",
            restored.display(),
            moved.display()
        ))
        .await
        .unwrap();
    // The delta wrote only what the cluster changed since: a small part of the full restore.
    let written = |name: &str| {
        format!(
            "SELECT written_bytes FROM oceanbase.cdb_ob_restore_history \
             WHERE restore_tenant_name = '{name}'"
        )
    };
    let full: i64 = value(&backstop, &written("pgr")).await.parse().unwrap();
    let delta: i64 = value(&backstop, &written("pgr2")).await.parse().unwrap();
    assert!(
        delta * 4 < full,
        "a delta restore wrote {delta} bytes, a full one {full}"
    );
    let mut again = Cluster::recovered(&root, &restored).await;
    check(again.client().await).await;
    again.amcheck().await;
    again.stop();
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_damaged_page_is_named_and_fails_the_backup_unless_told_to_go_on() {
    let (_server, backstop, mut cluster) = protected_cluster().await;
    let client = cluster.client().await;
    client
        .batch_execute(
            "CREATE TABLE victim AS SELECT g AS id, repeat('v', 100) AS pad \
             FROM generate_series(1, 1000) g; CHECKPOINT;",
        )
        .await
        .unwrap();
    let file: String = client
        .query_one("SELECT pg_relation_filepath('victim')", &[])
        .await
        .unwrap()
        .get(0);
    // Block 2, in the middle of its tuples: the page the server has cached stays clean, so the
    // damage stays on disk.
    {
        use std::os::unix::fs::FileExt;
        let path = cluster.data.join(&file);
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let mut byte = [0u8; 1];
        handle.read_at(&mut byte, 2 * 8192 + 4000).unwrap();
        byte[0] ^= 0x55;
        handle.write_at(&byte, 2 * 8192 + 4000).unwrap();
        handle.sync_all().unwrap();
    }
    let err = backstop
        .batch_execute("ALTER SYSTEM BACKUP TENANT = pg WAIT")
        .await
        .unwrap_err();
    let message = err.as_db_error().unwrap().message().to_string();
    let named = format!("{file} block 2");
    assert!(message.contains(&named), "{message}");
    let comment = value(
        &backstop,
        "SELECT comment FROM oceanbase.cdb_ob_backup_task_history ORDER BY task_id DESC LIMIT 1",
    )
    .await;
    assert!(comment.contains(&named), "{comment}");
    assert_eq!(newest_set(&backstop).await, "NULL", "no set is kept");
    wait_sessions(&cluster, 0).await;

    backstop
        .batch_execute("ALTER SYSTEM SET backup_ignore_checksum_failures = true TENANT = pg; ALTER SYSTEM BACKUP TENANT = pg WAIT")
        .await
        .unwrap();
    let comment = value(
        &backstop,
        "SELECT comment FROM oceanbase.cdb_ob_backup_set_files ORDER BY backup_set_id DESC LIMIT 1",
    )
    .await;
    assert!(comment.contains(&named), "{comment}");
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wal_travels_over_the_connection_and_an_archived_name_keeps_its_bytes() {
    let (server, backstop, mut cluster) = protected_cluster().await;
    let push = "ALTER SYSTEM PUSH ARCHIVELOG '00000099.history' TENANT = pg DATA $1";
    let first = b"1\t0/3000000\tno recovery target specified\n".to_vec();
    let status = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, String>("status");
    assert_eq!(
        status(backstop.query(push, &[&first]).await.unwrap()),
        "ARCHIVED"
    );
    assert_eq!(
        status(backstop.query(push, &[&first]).await.unwrap()),
        "ALREADY_ARCHIVED"
    );
    let other = b"something else".to_vec();
    let err = backstop.query(push, &[&other]).await.unwrap_err();
    assert_eq!(sqlstate(&err), "55000", "{err:?}");
    let row = backstop
        .query_one(
            "ALTER SYSTEM GET ARCHIVELOG '00000099.history' TENANT = pg",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>("data"), first);

    // archive-get as PostgreSQL's account writes the file where it is told.
    let (exe, password) = tool();
    let out = cluster.root.join("fetched.history");
    let fetched = as_postgres(&exe)
        .args([
            "archive-get",
            "--tenant",
            "pg",
            "--port",
            &server.port().to_string(),
        ])
        .arg("--password-file")
        .arg(&password)
        .arg("00000099.history")
        .arg(&out)
        .output()
        .unwrap();
    assert!(fetched.status.success(), "{fetched:?}");
    assert_eq!(std::fs::read(&out).unwrap(), first);
    let missing = as_postgres(&exe)
        .args([
            "archive-get",
            "--tenant",
            "pg",
            "--port",
            &server.port().to_string(),
        ])
        .arg("--password-file")
        .arg(&password)
        .args(["0000009A.history"])
        .arg(cluster.root.join("nothing"))
        .output()
        .unwrap();
    assert!(!missing.status.success(), "a segment not archived fails");
    // The cluster's own segments arrived the same way, and the .backup files with them.
    let client = cluster.client().await;
    archive_current_wal(&client).await;
    backstop
        .batch_execute("ALTER SYSTEM BACKUP TENANT = pg WAIT")
        .await
        .unwrap();
    until(
        &backstop,
        "SELECT count(*) > 0 FROM backstop.archive_segment WHERE name LIKE '%.backup'",
        "t",
        MINUTE,
    )
    .await;
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_suspend_and_cancel_release_the_backup_mode_and_a_killed_backup_resumes_to_a_set_that_starts()
 {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    let server = ChildServer::start(&catalog);
    let backstop = connect_as(server.port, "admin", common::ADMIN_PASSWORD).await;
    let mut cluster = started_cluster(server.port).await;
    cluster.pgbench(&["-i", "-q", "-s", "12"]);
    // Forty tables of random rows, which compress only about twice: they fill packs, so
    // checkpoints (which cover whole files) come while the copy still has megabytes to write.
    // pgbench's tables compress about fortyfold and fill none.
    let noise = |prefix: &str| {
        format!(
            "DO $$ BEGIN FOR i IN 1..40 LOOP EXECUTE format('CREATE TABLE %I AS SELECT g AS id, \
             md5(random()::text) || md5(random()::text) AS pad \
             FROM generate_series(1, 25000) g', '{prefix}' || i); END LOOP; END $$"
        )
    };
    cluster
        .client()
        .await
        .batch_execute(&noise("noise"))
        .await
        .unwrap();
    let root = cluster.root.clone();
    protect(&backstop, &cluster, &root).await;
    // Slow enough to be stopped mid-copy: 1 MB/s to the destination (pgbench's tables compress
    // about tenfold, random rows twice); checkpoints every second; a failed task's context
    // (past 1 MB stored) restarts a second after the server comes back.
    backstop
        .batch_execute(
            "ALTER SYSTEM SET backup_net_limit = '1MB';
             ALTER SYSTEM SET backup_checkpoint_interval = '1s';
             ALTER SYSTEM SET backup_restart_delay = '1s';
             ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB'",
        )
        .await
        .unwrap();

    // Killed while writing, past a checkpoint: PostgreSQL ends the backup mode when the
    // connection drops.
    backstop
        .batch_execute("ALTER SYSTEM BACKUP TENANT = pg")
        .await
        .unwrap();
    until_copying(&backstop, &cluster, "checkpoint_bytes > 0").await;
    drop(backstop);
    let port = server.port;
    server.kill();
    wait_sessions(&cluster, 0).await;
    let client = cluster.client().await;
    write_ledger(&client, 0, 30).await;

    // The next start, at the same address, goes on from the checkpoint as a new PostgreSQL
    // backup.
    let server = ChildServer::start_at(&catalog, port);
    let backstop = connect_as(server.port, "admin", common::ADMIN_PASSWORD).await;
    backstop
        .batch_execute("ALTER SYSTEM SET backup_net_limit = '0'")
        .await
        .unwrap();
    until(
        &backstop,
        "SELECT count(*) FROM oceanbase.cdb_ob_backup_set_files WHERE status = 'COMPLETED'",
        "1",
        Duration::from_secs(300),
    )
    .await;
    let set = newest_set(&backstop).await;
    // The set comes from a restart of the killed job's context, which skipped what the
    // checkpoint held.
    assert_eq!(
        value(
            &backstop,
            "SELECT string_agg(status || ' ' || restart_pass || ' ' || coalesce(comment, ''), '; ' \
             ORDER BY job_id) FROM oceanbase.cdb_ob_backup_job_history"
        )
        .await,
        "FAILED 0 SERVER_RESTART: the server stopped while the job ran; \
         COMPLETED 1 resumed from checkpoint"
    );
    let restored = root.join("restored");
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE pgr FROM pg UNTIL BACKUPSET = {set} TO 'dir://{}' WAIT",
            restored.display()
        ))
        .await
        .unwrap();
    let mut copy = Cluster::recovered(&root, &restored).await;
    let recovered = copy.client().await;
    assert_eq!(ledger_ids(&recovered).await, (0..30).collect::<Vec<i64>>());
    let accounts: i64 = recovered
        .query_one("SELECT count(*) FROM pgbench_accounts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(accounts, 1_200_000);
    copy.amcheck().await;
    copy.stop();

    // Suspended while copying data the repository does not have yet: the backup mode ends
    // with the suspend, and RESUME is a new PostgreSQL backup that completes a set.
    let interrupt = |tables: &'static str, statement: &'static str, end: &'static str| {
        let (backstop, cluster, client) = (&backstop, &cluster, &client);
        async move {
            client.batch_execute(&noise(tables)).await.unwrap();
            backstop
                .batch_execute(
                    "ALTER SYSTEM SET backup_net_limit = '1MB'; ALTER SYSTEM BACKUP TENANT = pg",
                )
                .await
                .unwrap();
            until_copying(backstop, cluster, "input_bytes > 0").await;
            backstop.batch_execute(statement).await.unwrap();
            until(
                backstop,
                "SELECT status FROM backstop.job ORDER BY job_id DESC LIMIT 1",
                end,
                MINUTE,
            )
            .await;
            wait_sessions(cluster, 0).await;
        }
    };
    interrupt(
        "later",
        "ALTER SYSTEM SUSPEND BACKUP TENANT = pg",
        "SUSPENDED",
    )
    .await;
    backstop
        .batch_execute(
            "ALTER SYSTEM SET backup_net_limit = '0'; ALTER SYSTEM RESUME BACKUP TENANT = pg WAIT",
        )
        .await
        .unwrap();
    assert_eq!(
        value(
            &backstop,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_set_files WHERE status = 'COMPLETED'"
        )
        .await,
        "2"
    );
    wait_sessions(&cluster, 0).await;

    // Cancelled the same way: the backup mode ends with the job.
    interrupt("more", "ALTER SYSTEM CANCEL BACKUP TENANT = pg", "CANCELED").await;
    cluster.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_set_made_plus_archivelog_keeps_its_wal_and_recovers_without_an_archive() {
    let server = TestServer::start().await;
    let backstop = server.connect().await;
    // No archiving at all: the set must carry the WAL it needs.
    let mut cluster = Cluster::init(true);
    cluster.configure("wal_level = replica\nfsync = off");
    cluster.start();
    fill(&cluster, "1").await;
    let client = cluster.client().await;
    write_ledger(&client, 0, 25).await;
    let root = cluster.root.clone();
    let (exe, password) = tool();
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{root}/backup';
             ALTER SYSTEM SET pg_tool_path = '{exe}';
             ALTER SYSTEM SET pg_tool_password_file = '{password}';
             CREATE TENANT pg SOURCE = '{uri}' PGDATA = '{data}'",
            root = root.display(),
            exe = exe.display(),
            password = password.display(),
            uri = cluster.uri(),
            data = cluster.data.display(),
        ))
        .await
        .unwrap();
    // Without PLUS ARCHIVELOG the set cannot be made consistent: refused after the wait.
    let err = backstop
        .batch_execute(
            "ALTER SYSTEM SET pg_archive_timeout = '1s'; ALTER SYSTEM BACKUP TENANT = pg WAIT",
        )
        .await
        .unwrap_err();
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(message.contains("was not archived within 1 s"), "{message}");
    backstop
        .batch_execute("ALTER SYSTEM BACKUP TENANT = pg PLUS ARCHIVELOG WAIT")
        .await
        .unwrap();
    write_ledger(&client, 25, 40).await;
    let set = newest_set(&backstop).await;
    let restored = root.join("restored");
    backstop
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE pgr FROM pg UNTIL BACKUPSET = {set} TO 'dir://{}' WAIT",
            restored.display()
        ))
        .await
        .unwrap();
    let copy = Cluster::recovered(&root, &restored).await;
    assert_eq!(
        ledger_ids(&copy.client().await).await,
        (0..25).collect::<Vec<i64>>()
    );
    copy.amcheck().await;
    drop(copy);
    cluster.stop();
}

/// Waits until the backup task is DOING, meets `condition`, and still has input to read; then
/// the cluster must be in backup mode for it.
async fn until_copying(backstop: &Client, cluster: &Cluster, condition: &str) {
    until(
        backstop,
        &format!(
            "SELECT count(*) FROM backstop.task WHERE status = 'DOING' \
             AND {condition} AND input_bytes < total_bytes"
        ),
        "1",
        MINUTE,
    )
    .await;
    assert_eq!(
        cluster.backup_sessions().await,
        1,
        "the copy holds one backup mode"
    );
}

async fn wait_sessions(cluster: &Cluster, expected: i64) {
    for _ in 0..300 {
        if cluster.backup_sessions().await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("PostgreSQL still has a backstop backup session after 30 s");
}
