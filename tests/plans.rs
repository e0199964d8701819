//! Scheduled backup plans (SPEC §2.7) driven over the wire with the policy clock moved forward
//! an hour at a time (`_backup_clock_offset`): chains close at CHAIN_LENGTH, the oldest AUTO
//! chain goes when RETENTION would be exceeded while MANUAL chains stay, and every set of every
//! kept chain restores to the tree as it was at its run.

mod common;

use std::path::Path;
use std::time::Duration;

use common::tree::{assert_same_tree, copy_tree, noise};
use common::{TestServer, assert_refused, until, value};
use tokio_postgres::Client;

/// Moves the policy clock to `hours` ahead of the server's and waits for run `run` of plan
/// `plan` to end.
async fn advance_to_run(client: &Client, plan: &str, hours: u64, run: u64) {
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET _backup_clock_offset = '{hours}h'"
        ))
        .await
        .unwrap();
    until(
        client,
        &format!(
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_plan_history WHERE plan_name = '{plan}' \
             AND result <> 'RUNNING'"
        ),
        &run.to_string(),
        Duration::from_secs(60),
    )
    .await;
}

async fn restore_set(client: &Client, set: &str, target: &Path) {
    client
        .batch_execute(&format!(
            "ALTER SYSTEM RESTORE r{set} FROM app UNTIL BACKUPSET = {set} TO 'dir://{}' WAIT",
            target.display()
        ))
        .await
        .unwrap_or_else(|e| panic!("set {set} restores: {e:?}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_hourly_plan_builds_chains_of_its_length_and_keeps_its_retention() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest, snapshots) = (
        tmp.path().join("source"),
        tmp.path().join("dest"),
        tmp.path().join("snapshots"),
    );
    std::fs::create_dir_all(&source).unwrap();
    std::fs::create_dir_all(&snapshots).unwrap();
    std::fs::write(source.join("base"), noise(1, 1 << 20)).unwrap();
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET backup_gc_grace_period = '0s';
             ALTER SYSTEM BACKUP TENANT app WAIT",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    copy_tree(&source, &snapshots.join("manual"));

    assert_refused(
        &client,
        "CREATE BACKUP POLICY bad SCHEDULE = '0 2 * *'",
        "22023",
        "4 fields",
    )
    .await;
    assert_refused(
        &client,
        "CREATE BACKUP POLICY bad SCHEDULE = '@daily' TIMEZONE = 'Mars/Olympus'",
        "22023",
        "not a time zone",
    )
    .await;
    client
        .batch_execute("CREATE BACKUP POLICY hourly SCHEDULE = '@hourly'")
        .await
        .unwrap();
    assert_refused(
        &client,
        "CREATE BACKUP PLAN p FOR TENANT app POLICY hourly CHAIN_LENGTH = 31",
        "22023",
        "1..30",
    )
    .await;
    assert_refused(
        &client,
        "CREATE BACKUP PLAN p FOR TENANT app POLICY nightly",
        "42704",
        "nightly",
    )
    .await;
    assert_refused(
        &client,
        "CREATE BACKUP PLAN p FOR TENANT app POLICY hourly NOTIFY = 'events'",
        "0A000",
        "NOTIFY",
    )
    .await;
    client
        .batch_execute(
            "CREATE BACKUP PLAN p FOR TENANT = app POLICY = hourly CHAIN_LENGTH = 3 \
             RETENTION = 2 CHAINS",
        )
        .await
        .unwrap();
    assert_refused(&client, "DROP BACKUP POLICY hourly", "55000", "plan(s) p").await;
    assert_refused(
        &client,
        "ALTER BACKUP PLAN p SET POLICY = hourly",
        "55000",
        "create a new plan",
    )
    .await;
    assert_refused(&client, "ALTER BACKUP PLAN p ENABLE", "55000", "only a DISABLED").await;
    assert_eq!(
        value(
            &client,
            "SELECT name || ' ' || status || ' ' || tenants || ' ' || policies || ' ' || \
             chain_length || ' ' || retention || ' ' || execution_count || ' ' || \
             (next_run_time > create_time) FROM oceanbase.cdb_ob_backup_plans"
        )
        .await,
        "p ENABLED app hourly 3 2 CHAINS 0 true"
    );

    // Ten hourly runs, each after the tree changed.
    const RUNS: u64 = 10;
    for run in 1..=RUNS {
        std::fs::write(source.join(format!("run{run}")), noise(100 + run, 256 << 10)).unwrap();
        copy_tree(&source, &snapshots.join(run.to_string()));
        advance_to_run(&client, "p", run, run).await;
    }
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(result || '/' || policy_name, ',' ORDER BY run_id) \
             FROM oceanbase.cdb_ob_backup_plan_history"
        )
        .await,
        vec!["COMPLETED/hourly"; RUNS as usize].join(",")
    );
    // Chains of 3 points; before the third and the fourth AUTO chain started, the oldest went.
    until(
        &client,
        "SELECT count(*) FROM oceanbase.cdb_ob_backup_delete_job_history WHERE status = 'COMPLETED'",
        "2",
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(kind || ':' || COALESCE(plan_name, '-') || ':' || points || ':' \
             || status, ',' ORDER BY chain_id) FROM oceanbase.cdb_ob_backup_chains"
        )
        .await,
        "MANUAL:-:1:OPEN,AUTO:p:3:DELETED,AUTO:p:3:DELETED,AUTO:p:3:CLOSED,AUTO:p:1:OPEN"
    );
    // Every set of the kept chains (and the MANUAL one) restores to its run's tree.
    let kept = value(
        &client,
        "SELECT string_agg(s.backup_set_id || ':' || COALESCE(h.run_id, 0), ',' \
         ORDER BY s.backup_set_id) FROM oceanbase.cdb_ob_backup_set_files s \
         LEFT JOIN oceanbase.cdb_ob_backup_job_history j ON j.backup_set_id = s.backup_set_id \
         LEFT JOIN oceanbase.cdb_ob_backup_plan_history h ON h.jobs = CAST(j.job_id AS VARCHAR) \
         WHERE s.file_status = 'AVAILABLE'",
    )
    .await;
    let pairs: Vec<(&str, &str)> = kept
        .split(',')
        .map(|p| p.split_once(':').unwrap())
        .collect();
    assert_eq!(pairs.len(), 5, "the manual set, 3 points of a closed chain, 1 of the open: {kept}");
    for (set, run) in pairs {
        let target = tmp.path().join(format!("restored{set}"));
        restore_set(&client, set, &target).await;
        let expected = if run == "0" { "manual".to_string() } else { run.to_string() };
        assert_same_tree(&snapshots.join(expected), &target);
    }
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_set_files WHERE file_status = 'DELETED'"
        )
        .await,
        "6"
    );

    // Disabled, the plan never runs; enabled again, it starts from now.
    client
        .batch_execute("ALTER BACKUP PLAN p DISABLE")
        .await
        .unwrap();
    assert_refused(&client, "ALTER SYSTEM RUN BACKUP PLAN p", "55000", "DISABLED").await;
    client
        .batch_execute("ALTER SYSTEM SET _backup_clock_offset = '30h'")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        value(&client, "SELECT count(*) FROM oceanbase.cdb_ob_backup_plan_history").await,
        RUNS.to_string()
    );
    client
        .batch_execute("ALTER BACKUP PLAN p ENABLE; ALTER SYSTEM RUN BACKUP PLAN p WAIT")
        .await
        .unwrap();
    // The run ends once the scheduler has seen its job end (within a tick).
    until(
        &client,
        "SELECT result || ' ' || COALESCE(policy_name, '-') || ' ' || comment \
         FROM oceanbase.cdb_ob_backup_plan_history ORDER BY run_id DESC LIMIT 1",
        "COMPLETED - run by ALTER SYSTEM RUN BACKUP PLAN",
        Duration::from_secs(30),
    )
    .await;
    client
        .batch_execute("DROP BACKUP PLAN p; DROP BACKUP POLICY hourly")
        .await
        .unwrap();
    assert_eq!(
        value(&client, "SELECT count(*) FROM oceanbase.cdb_ob_backup_chains").await,
        "5",
        "chains stay when their plan is dropped"
    );
}
