//! Least privilege (issue 12): the role matrix of SPEC §2.8 statement family by statement
//! family, the folders an operator may name (`allowed_paths`, a tenant's own log folder,
//! symlinks resolved), and secrets that never come back in a view, a NOTICE, an error or the
//! server's log.

mod common;

use std::path::Path;

use common::tree::{assert_same_tree, fidelity_tree};
use common::{ADMIN_PASSWORD, ChildServer, TestServer, connect_as, sqlstate, value};
use tokio_postgres::{AsyncMessage, Client};

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Role {
    Monitor,
    Operator,
    Admin,
}

/// One statement of each family and the least role that may run it, written from SPEC §2.8
/// (monitor: SELECT and waiting; operator: also starting, stopping and cancelling work; admin:
/// everything, including destinations, parameters, tenants, users and plans), not from the code.
fn matrix(root: &Path) -> Vec<(Role, String)> {
    let restore_into = root.join("allowed/r-matrix");
    vec![
        (
            Role::Monitor,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_jobs".into(),
        ),
        (Role::Monitor, "SELECT * FROM dba_ob_tenants".into()),
        (Role::Monitor, "ALTER SYSTEM WAIT JOB 1".into()),
        (Role::Operator, "ALTER SYSTEM BACKUP TENANT app".into()),
        (
            Role::Operator,
            "ALTER SYSTEM BACKUP INCREMENTAL DATABASE".into(),
        ),
        (Role::Operator, "ALTER SYSTEM CANCEL BACKUP".into()),
        (Role::Operator, "ALTER SYSTEM STOP BACKUP".into()),
        (Role::Operator, "ALTER SYSTEM SUSPEND BACKUP".into()),
        (Role::Operator, "ALTER SYSTEM RESUME BACKUP".into()),
        (
            Role::Operator,
            "ALTER SYSTEM RESTART BACKUP CONTEXT 'no-such'".into(),
        ),
        (
            Role::Operator,
            "ALTER SYSTEM DELETE BACKUP CONTEXT 'no-such'".into(),
        ),
        (Role::Operator, "ALTER SYSTEM ARCHIVELOG".into()),
        (Role::Operator, "ALTER SYSTEM NOARCHIVELOG".into()),
        (Role::Operator, "ALTER SYSTEM BACKUP BACKUPSET 1".into()),
        (Role::Operator, "ALTER SYSTEM BACKUP BACKUPPIECE ALL".into()),
        (
            Role::Operator,
            "ALTER SYSTEM CANCEL BACKUP BACKUPSET".into(),
        ),
        (Role::Operator, "ALTER SYSTEM STOP BACKUP BACKUPSET".into()),
        (
            Role::Operator,
            "ALTER SYSTEM START BACKUP ARCHIVELOG".into(),
        ),
        (Role::Operator, "ALTER SYSTEM STOP BACKUP ARCHIVELOG".into()),
        (
            Role::Operator,
            format!(
                "ALTER SYSTEM RESTORE rm FROM app TO 'dir://{}'",
                restore_into.display()
            ),
        ),
        (Role::Operator, "ALTER SYSTEM CANCEL RESTORE nobody".into()),
        (Role::Operator, "ALTER SYSTEM VALIDATE DATABASE".into()),
        (Role::Operator, "ALTER SYSTEM CANCEL VALIDATE".into()),
        (Role::Operator, "ALTER SYSTEM DELETE BACKUPSET 999".into()),
        (Role::Operator, "ALTER SYSTEM DELETE OBSOLETE BACKUP".into()),
        (Role::Operator, "ALTER SYSTEM CANCEL DELETE BACKUP".into()),
        (
            Role::Operator,
            "ALTER SYSTEM RUN BACKUP PLAN nightly".into(),
        ),
        (
            Role::Operator,
            "ALTER SYSTEM CANCEL ALL BACKUP FORCE".into(),
        ),
        (
            Role::Admin,
            "CREATE TENANT other SOURCE = 'dir:///no/such/dir'".into(),
        ),
        (
            Role::Admin,
            "ALTER TENANT app SET LOG_SOURCE = 'dir:///no/such/dir'".into(),
        ),
        (Role::Admin, "DROP TENANT nosuch".into()),
        (
            Role::Admin,
            "ALTER SYSTEM SET backup_concurrency = 2".into(),
        ),
        (
            Role::Admin,
            "ALTER SYSTEM SET allowed_paths = '/no/such'".into(),
        ),
        (
            Role::Admin,
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file:///no/such/dest' TENANT = nosuch".into(),
        ),
        (
            Role::Admin,
            "ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'relative'".into(),
        ),
        (
            Role::Admin,
            "ALTER SYSTEM IMPORT BACKUP FROM 'file:///no/such/dest'".into(),
        ),
        (
            Role::Admin,
            "CREATE USER newbie PASSWORD 'x1' ROLE monitor".into(),
        ),
        (Role::Admin, "ALTER USER nosuch ROLE operator".into()),
        (Role::Admin, "DROP USER nosuch".into()),
        (
            Role::Admin,
            "CREATE BACKUP POLICY p1 SCHEDULE = '0 2 * * *'".into(),
        ),
        (
            Role::Admin,
            "ALTER SYSTEM ADD DELETE BACKUP POLICY 'default' RECOVERY_WINDOW '7d'".into(),
        ),
    ]
}

async fn server_with_app(root: &Path) -> (TestServer, Client) {
    let server = TestServer::start().await;
    let admin = server.connect().await;
    fidelity_tree(&root.join("source"));
    std::fs::create_dir_all(root.join("log")).unwrap();
    std::fs::create_dir_all(root.join("allowed")).unwrap();
    admin
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}' LOG_SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET allowed_paths = '{}'; \
             CREATE USER op PASSWORD 'op-pw' ROLE operator; \
             CREATE USER mon PASSWORD 'mon-pw' ROLE monitor; \
             ALTER SYSTEM BACKUP TENANT app WAIT",
            root.join("source").display(),
            root.join("log").display(),
            root.join("dest").display(),
            root.join("allowed").display()
        ))
        .await
        .unwrap();
    (server, admin)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_statement_family_is_allowed_or_refused_by_role() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (server, admin) = server_with_app(root).await;
    let sessions = [
        (
            Role::Monitor,
            connect_as(server.port(), "mon", "mon-pw").await,
        ),
        (
            Role::Operator,
            connect_as(server.port(), "op", "op-pw").await,
        ),
        (Role::Admin, admin),
    ];
    for (needed, sql) in matrix(root) {
        for (role, client) in &sessions {
            let outcome = client.simple_query(&sql).await;
            // Let whatever it started end before the next statement, so that no statement is
            // refused for a job another one left running.
            client
                .simple_query("ALTER SYSTEM CANCEL ALL BACKUP FORCE")
                .await
                .ok();
            let denied = matches!(&outcome, Err(e) if sqlstate(e) == "42501");
            assert_eq!(
                denied,
                *role < needed,
                "{role:?} running {sql} (needs {needed:?}): {outcome:?}"
            );
            if denied {
                let e = outcome.unwrap_err();
                let message = e.as_db_error().unwrap().message();
                assert!(
                    message.contains("role"),
                    "the refusal names the role: {message}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operator_names_only_the_folders_it_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (server, admin) = server_with_app(root).await;
    let op = connect_as(server.port(), "op", "op-pw").await;
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("allowed/escape")).unwrap();

    // Restores: only under allowed_paths, symlinks resolved; method=delta too.
    for target in [
        outside.join("r1"),
        root.join("allowed/escape/r2"),
        root.join("allowed/../outside/r3"),
    ] {
        let sql = format!(
            "ALTER SYSTEM RESTORE rx FROM app TO 'dir://{}' WAIT",
            target.display()
        );
        let e = op.batch_execute(&sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
        let message = e.as_db_error().unwrap().message();
        assert!(message.contains("allowed_paths"), "{message}");
        assert!(!target.exists(), "{} was created", target.display());
    }
    let delta = format!(
        "ALTER SYSTEM RESTORE rd FROM app TO 'dir://{}' WITH 'method=delta' WAIT",
        outside.display()
    );
    assert_eq!(
        sqlstate(&op.batch_execute(&delta).await.unwrap_err()),
        "42501"
    );
    let inside = root.join("allowed/r-ok");
    op.batch_execute(&format!(
        "ALTER SYSTEM RESTORE rok FROM app TO 'dir://{}' WAIT",
        inside.display()
    ))
    .await
    .unwrap();
    assert_same_tree(&root.join("source"), &inside);

    // Archive log: only inside the tenant's own log folder.
    let secret_file = outside.join("000000010000000000000001");
    std::fs::write(&secret_file, b"not a log of app").unwrap();
    for sql in [
        format!(
            "ALTER SYSTEM PUSH ARCHIVELOG '{}' TENANT = app",
            secret_file.display()
        ),
        format!(
            "ALTER SYSTEM GET ARCHIVELOG '000000010000000000000001' TENANT = app TO '{}'",
            outside.join("got").display()
        ),
    ] {
        let e = op.batch_execute(&sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}: {e:?}");
        assert!(
            e.as_db_error().unwrap().message().contains("log folder"),
            "{e:?}"
        );
    }

    // A second destination named in the statement: only under allowed_paths.
    let e = op
        .batch_execute(&format!(
            "ALTER SYSTEM BACKUP BACKUPSET 1 BACKUP_BACKUP_DEST = 'file://{}'",
            outside.join("copy").display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    assert!(!outside.join("copy").exists());

    // An admin is not limited.
    let by_admin = outside.join("by-admin");
    admin
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE ra FROM app TO 'dir://{}' WAIT",
            by_admin.display()
        ))
        .await
        .unwrap();
    assert_same_tree(&root.join("source"), &by_admin);
    // And only an admin may widen what operators reach.
    let e = op
        .batch_execute(&format!(
            "ALTER SYSTEM SET allowed_paths = '{}'",
            outside.display()
        ))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let e = admin
        .batch_execute("ALTER SYSTEM SET allowed_paths = 'relative/path'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22023");
}

/// Every place a secret can be given, each with its own secret.
/// Statements that carry a secret; `pg` is a running cluster the PostgreSQL SOURCE names (its
/// trust authentication ignores the password, which registration must still never show).
fn secret_statements(root: &Path, pg: &common::pg::Cluster) -> Vec<(&'static str, String)> {
    let s3 = |key: &str| {
        format!(
            "s3://bucket/prefix?endpoint=http://127.0.0.1:9&region=r&access_id=AKID&access_key={key}"
        )
    };
    vec![
        (
            "S3CR3T-source",
            format!(
                "CREATE TENANT pg SOURCE = 'postgres://postgres:S3CR3T-source@127.0.0.1:{}/postgres' PGDATA = '{}'",
                pg.port,
                pg.data.display()
            ),
        ),
        (
            "S3CR3T-data-dest",
            format!(
                "ALTER SYSTEM SET DATA_BACKUP_DEST = '{}' TENANT = pg",
                s3("S3CR3T-data-dest")
            ),
        ),
        (
            "S3CR3T-archive-dest",
            format!(
                "ALTER SYSTEM SET LOG_ARCHIVE_DEST = 'LOCATION={} BINDING=OPTIONAL' TENANT = pg",
                s3("S3CR3T-archive-dest")
            ),
        ),
        (
            "S3CR3T-copy-dest",
            format!(
                "ALTER SYSTEM SET BACKUP_BACKUP_DEST = '{}'",
                s3("S3CR3T-copy-dest")
            ),
        ),
        (
            "S3CR3T-named-copy-dest",
            format!(
                "ALTER SYSTEM BACKUP BACKUPSET 1 BACKUP_BACKUP_DEST = '{}'",
                s3("S3CR3T-named-copy-dest")
            ),
        ),
        (
            "S3CR3T-restore-at",
            format!(
                "ALTER SYSTEM RESTORE rs FROM app AT '{}' TO 'dir://{}'",
                s3("S3CR3T-restore-at"),
                root.join("allowed/rs").display()
            ),
        ),
        (
            "S3CR3T-validate-at",
            format!(
                "ALTER SYSTEM VALIDATE DATABASE AT '{}'",
                s3("S3CR3T-validate-at")
            ),
        ),
        (
            "S3CR3T-import",
            format!("ALTER SYSTEM IMPORT BACKUP FROM '{}'", s3("S3CR3T-import")),
        ),
        (
            "S3CR3T-user",
            "CREATE USER u1 PASSWORD 'S3CR3T-user' ROLE monitor".into(),
        ),
        (
            "S3CR3T-alter-user",
            "ALTER USER u1 PASSWORD 'S3CR3T-alter-user'".into(),
        ),
        (
            "S3CR3T-encryption",
            "SET ENCRYPTION ON IDENTIFIED BY 'S3CR3T-encryption' ONLY".into(),
        ),
        (
            "S3CR3T-decryption",
            "SET DECRYPTION IDENTIFIED BY 'S3CR3T-decryption'".into(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_given_anywhere_never_shows_in_a_view_a_notice_an_error_or_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    fidelity_tree(&root.join("source"));
    std::fs::create_dir_all(root.join("allowed")).unwrap();
    let mut cluster = common::pg::Cluster::init(false);
    cluster.configure("wal_level = replica");
    cluster.start();
    let log = root.join("server.log");
    let server = ChildServer::start_logging_to(&root.join("data"), &log);
    let dsn = format!(
        "host=127.0.0.1 port={} user=admin password={ADMIN_PASSWORD} dbname=backstop",
        server.port
    );
    let (client, mut connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (notices_tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let AsyncMessage::Notice(n) = message {
                notices_tx
                    .send(format!("{} {:?} {:?}", n.message(), n.detail(), n.hint()))
                    .ok();
            }
        }
    });
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM BACKUP TENANT app WAIT",
            root.join("source").display(),
            root.join("dest").display()
        ))
        .await
        .unwrap();

    let statements = secret_statements(root, &cluster);
    let mut said = Vec::new();
    for (_, sql) in &statements {
        match client.simple_query(sql).await {
            Ok(_) => {}
            Err(e) => {
                let db = e.as_db_error();
                said.push(format!(
                    "{sql} -> {} {:?} {:?}",
                    db.map(|d| d.message()).unwrap_or_default(),
                    db.and_then(|d| d.detail()),
                    db.and_then(|d| d.hint())
                ));
            }
        }
        // Waiting streams NOTICEs: wait for whatever the statement started.
        let newest = value(&client, "SELECT coalesce(max(job_id), 0) FROM backstop.job").await;
        if let Err(e) = client
            .simple_query(&format!("ALTER SYSTEM WAIT JOB {newest} TIMEOUT = '20s'"))
            .await
        {
            said.push(format!("WAIT -> {e:?}"));
        }
    }
    client
        .batch_execute("ALTER SYSTEM CANCEL ALL BACKUP FORCE")
        .await
        .ok();

    // Every view, every row, every column.
    let views = client
        .simple_query(
            "SELECT table_schema, table_name FROM information_schema.tables \
             WHERE table_schema IN ('oceanbase', 'backstop') ORDER BY 1, 2",
        )
        .await
        .unwrap();
    let mut shown = String::new();
    let mut scanned = 0;
    for view in views.iter().filter_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => {
            Some(format!("{}.{}", r.get(0).unwrap(), r.get(1).unwrap()))
        }
        _ => None,
    }) {
        scanned += 1;
        for message in client
            .simple_query(&format!("SELECT * FROM {view}"))
            .await
            .unwrap()
        {
            if let tokio_postgres::SimpleQueryMessage::Row(r) = message {
                for i in 0..r.len() {
                    shown.push_str(r.get(i).unwrap_or(""));
                    shown.push('\n');
                }
            }
        }
    }
    assert!(scanned > 40, "only {scanned} views were scanned");
    drop(client);
    drop(server);
    let mut notices_seen = Vec::new();
    while let Ok(n) = notices.try_recv() {
        notices_seen.push(n);
    }
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("applying statement"),
        "the log was written at debug level"
    );
    for (secret, sql) in &statements {
        assert!(
            !shown.contains(secret),
            "{secret} shows in a view (given by {sql})"
        );
        for line in &said {
            // The statement text itself is what the client sent; only what came back counts.
            let answer = line.split_once(" -> ").map_or(line.as_str(), |(_, a)| a);
            assert!(
                !answer.contains(secret),
                "{secret} shows in an error: {line}"
            );
        }
        for n in &notices_seen {
            assert!(!n.contains(secret), "{secret} shows in a NOTICE: {n}");
        }
        assert!(!log.contains(secret), "{secret} shows in the server's log");
    }
    // The masked forms are there, so the scan read what it should have.
    assert!(
        shown.contains(&format!(
            "postgres://postgres:***@127.0.0.1:{}/postgres",
            cluster.port
        )),
        "{shown}"
    );
}
