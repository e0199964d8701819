//! Scheduled backup plans (SPEC §2.7) driven over the wire, 65 runs, with the policy clock moved forward
//! an hour at a time (`_backup_clock_offset`): chains close at CHAIN_LENGTH, the oldest AUTO
//! chain goes when RETENTION would be exceeded while MANUAL chains stay, and every set of every
//! kept chain restores to the tree as it was at its run.

mod common;

use std::path::Path;
use std::time::Duration;

use common::tree::{assert_same_tree, copy_tree, noise};
use common::{TestServer, assert_refused, until, value};
use tokio_postgres::Client;

/// When plan `plan` first runs: its NEXT_RUN_TIME, in seconds since the epoch.
async fn first_run(client: &Client, plan: &str) -> i64 {
    value(
        client,
        &format!(
            "SELECT CAST(date_part('epoch', next_run_time) AS BIGINT) \
             FROM oceanbase.cdb_ob_backup_plans WHERE name = '{plan}'"
        ),
    )
    .await
    .parse()
    .unwrap()
}

/// The offset that puts the policy clock `minutes` after `base` (seconds since the epoch) now.
/// Steps land between scheduled times, and each is computed from the server's clock at the
/// moment, so the server's own clock moving during a test never crosses a scheduled time.
fn offset_to(base: i64, minutes: i64) -> String {
    let offset = (base + minutes * 60 - chrono::Utc::now().timestamp()).max(0);
    format!("{offset}s")
}

/// Sets the policy clock to `minutes` after `base`.
async fn set_policy_clock(client: &Client, base: i64, minutes: i64) {
    client
        .batch_execute(&format!(
            "ALTER SYSTEM SET _backup_clock_offset = '{}'",
            offset_to(base, minutes)
        ))
        .await
        .unwrap();
}

/// Moves the policy clock to half an hour after the hour of run `run` of plan `plan` (counted
/// from `base`, its first) and waits for that run to end.
async fn advance_to_run(client: &Client, plan: &str, base: i64, run: u64) {
    set_policy_clock(client, base, (run as i64 - 1) * 60 + 30).await;
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
        "CREATE BACKUP PLAN p FOR TENANT app POLICY hourly NOTIFY = 'ftp://events'",
        "22023",
        "neither a channel name nor",
    )
    .await;
    client
        .batch_execute(
            "CREATE BACKUP PLAN p FOR TENANT = app POLICY = hourly CHAIN_LENGTH = 5 \
             RETENTION = 3 CHAINS",
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
    assert_refused(
        &client,
        "ALTER BACKUP PLAN p ENABLE",
        "55000",
        "only a DISABLED",
    )
    .await;
    assert_eq!(
        value(
            &client,
            "SELECT name || ' ' || status || ' ' || tenants || ' ' || policies || ' ' || \
             chain_length || ' ' || retention || ' ' || execution_count || ' ' || \
             (next_run_time > create_time) FROM oceanbase.cdb_ob_backup_plans"
        )
        .await,
        "p ENABLED app hourly 5 3 CHAINS 0 true"
    );

    // 65 hourly runs, each after the tree changed; statements back up in between (a full
    // after run 20, a full after run 40 and an incremental after run 41: MANUAL chains).
    const RUNS: u64 = 65;
    let mut manual: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    manual.insert("1".into(), "manual".into());
    let base = first_run(&client, "p").await;
    for run in 1..=RUNS {
        std::fs::write(source.join(format!("run{run}")), noise(100 + run, 16 << 10)).unwrap();
        copy_tree(&source, &snapshots.join(run.to_string()));
        advance_to_run(&client, "p", base, run).await;
        let statement = match run {
            20 | 40 => "ALTER SYSTEM BACKUP TENANT app WAIT",
            41 => "ALTER SYSTEM BACKUP INCREMENTAL TENANT app WAIT",
            _ => continue,
        };
        client.batch_execute(statement).await.unwrap();
        let set = value(
            &client,
            "SELECT max(backup_set_id) FROM oceanbase.cdb_ob_backup_set_files",
        )
        .await;
        manual.insert(set, run.to_string());
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
    // 13 AUTO chains of 5 points; before each from the fourth on started, the oldest went: 10
    // deletion jobs, 50 sets. The MANUAL chains all stay.
    until(
        &client,
        "SELECT count(*) FROM oceanbase.cdb_ob_backup_delete_job_history WHERE status = 'COMPLETED'",
        "10",
        Duration::from_secs(60),
    )
    .await;
    let deleted = |id: u32| format!("{id}:AUTO:p:5:DELETED");
    let expected: Vec<String> = (1..=16)
        .map(|id| match id {
            1 | 6 => format!("{id}:MANUAL:-:1:CLOSED"),
            11 => "11:MANUAL:-:2:OPEN".into(),
            14 | 15 => format!("{id}:AUTO:p:5:CLOSED"),
            16 => "16:AUTO:p:5:OPEN".into(),
            id => deleted(id),
        })
        .collect();
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(chain_id || ':' || kind || ':' || COALESCE(plan_name, '-') || ':' \
             || points || ':' || status, ',' ORDER BY chain_id) FROM oceanbase.cdb_ob_backup_chains"
        )
        .await,
        expected.join(",")
    );
    // Every set of the kept chains, and every MANUAL one, restores to its run's tree.
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
    assert_eq!(
        pairs.len(),
        19,
        "4 MANUAL sets, 15 points of the kept AUTO chains: {kept}"
    );
    for (set, run) in pairs {
        let target = tmp.path().join(format!("restored{set}"));
        restore_set(&client, set, &target).await;
        let expected = match run {
            "0" => manual
                .get(set)
                .unwrap_or_else(|| panic!("set {set} is no run's"))
                .clone(),
            run => run.to_string(),
        };
        assert_same_tree(&snapshots.join(expected), &target);
    }
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_set_files WHERE file_status = 'DELETED'"
        )
        .await,
        "50"
    );

    // Disabled, the plan never runs; enabled again, it starts from now.
    client
        .batch_execute("ALTER BACKUP PLAN p DISABLE")
        .await
        .unwrap();
    assert_refused(
        &client,
        "ALTER SYSTEM RUN BACKUP PLAN p",
        "55000",
        "DISABLED",
    )
    .await;
    // Six scheduled hours pass while it is disabled.
    set_policy_clock(&client, base, 70 * 60 + 30).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_plan_history"
        )
        .await,
        RUNS.to_string()
    );
    client
        .batch_execute("ALTER BACKUP PLAN p ENABLE; ALTER SYSTEM RUN BACKUP PLAN p WAIT")
        .await
        .unwrap();
    // The run ends once the scheduler has seen its job end (within a tick). The open chain was
    // full: this run started chain 17, so chain 14 went.
    until_contains(
        &client,
        "SELECT result || ' ' || COALESCE(policy_name, '-') || ' ' || comment \
         FROM oceanbase.cdb_ob_backup_plan_history ORDER BY run_id DESC LIMIT 1",
        "COMPLETED - run by ALTER SYSTEM RUN BACKUP PLAN; chain 14 of tenant app deleted by job",
    )
    .await;
    client
        .batch_execute("DROP BACKUP PLAN p; DROP BACKUP POLICY hourly")
        .await
        .unwrap();
    assert_eq!(
        value(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_chains"
        )
        .await,
        "17",
        "chains stay when their plan is dropped"
    );
}

/// Polls `sql` until its first value contains `part`.
async fn until_contains(client: &Client, sql: &str, part: &str) {
    for _ in 0..600 {
        if value(client, sql).await.contains(part) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{sql} never contained {part}: {}", value(client, sql).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_skip_a_busy_tenant_and_an_unfinished_run_and_a_run_missed_while_down_runs_once() {
    use common::{ADMIN_PASSWORD, ChildServer, connect_as};
    let tmp = tempfile::tempdir().unwrap();
    let (data, source, dest) = (
        tmp.path().join("data"),
        tmp.path().join("source"),
        tmp.path().join("dest"),
    );
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("first"), noise(1, 48 << 20)).unwrap();
    let server = ChildServer::start(&data);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    // 48 MiB of new data per backup at 16 MiB/s: each backup runs about three seconds.
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET backup_net_limit = '16MB';
             CREATE BACKUP POLICY hourly SCHEDULE = '@hourly';
             CREATE BACKUP PLAN p FOR TENANT app POLICY hourly;
             ALTER SYSTEM BACKUP TENANT app",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_jobs WHERE status = 'DOING'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    let base = first_run(&client, "p").await;
    // A run due while a statement's backup of the tenant runs skips the tenant.
    set_policy_clock(&client, base, 30).await;
    until_contains(
        &client,
        "SELECT COALESCE(max(result || ': ' || comment), '') FROM cdb_ob_backup_plan_history",
        "tenant app skipped: job 1 is backing it up",
    )
    .await;
    client
        .batch_execute("ALTER SYSTEM WAIT JOB 1")
        .await
        .unwrap();

    // A run due while the plan's previous run still runs is skipped, saying why.
    std::fs::write(source.join("second"), noise(2, 48 << 20)).unwrap();
    set_policy_clock(&client, base, 90).await;
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_plan_history WHERE result = 'RUNNING'",
        "1",
        Duration::from_secs(30),
    )
    .await;
    set_policy_clock(&client, base, 150).await;
    until_contains(
        &client,
        "SELECT string_agg(result || ': ' || comment, ' | ' ORDER BY run_id) FROM cdb_ob_backup_plan_history",
        "SKIPPED: the previous run 2 of plan p is still running",
    )
    .await;
    until(
        &client,
        "SELECT string_agg(result, ',' ORDER BY run_id) FROM cdb_ob_backup_plan_history",
        "SKIPPED,COMPLETED,SKIPPED",
        Duration::from_secs(60),
    )
    .await;

    // Down for three hours (the clock moved in the catalog while no server ran): the runs
    // missed meanwhile run once, at start, and say how late.
    server.kill();
    let catalog = rusqlite::Connection::open(data.join("catalog.db")).unwrap();
    let offset = offset_to(base, 330);
    catalog
        .execute(
            "UPDATE parameter SET value = ?1, raw_value = ?1 \
             WHERE tenant_id = 1 AND name = '_backup_clock_offset'",
            [&offset],
        )
        .unwrap();
    drop(catalog);
    let server = ChildServer::start(&data);
    let client = connect_as(server.port, "admin", ADMIN_PASSWORD).await;
    until(
        &client,
        "SELECT count(*) FROM cdb_ob_backup_plan_history WHERE result = 'COMPLETED'",
        "2",
        Duration::from_secs(60),
    )
    .await;
    let last = value(
        &client,
        "SELECT comment FROM cdb_ob_backup_plan_history ORDER BY run_id DESC LIMIT 1",
    )
    .await;
    // The policy clock jumps by whole hours here, so every run is somewhat late; this one by
    // the hours the server was down.
    let late: u64 = last
        .strip_prefix("late by ")
        .and_then(|rest| rest.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{last}"));
    assert!(late > 3600, "{last}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        value(&client, "SELECT count(*) FROM cdb_ob_backup_plan_history").await,
        "4",
        "three missed hours make one run"
    );
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(backup_type || ':' || plan_name || ':' || chain_id, ',' ORDER BY job_id) \
             FROM cdb_ob_backup_job_history WHERE plan_name IS NOT NULL"
        )
        .await,
        "FULL:p:2,INC:p:2"
    );
}

/// A session that LISTENs: its client, and the notifications it receives as (channel, payload).
async fn listening_client(
    port: u16,
) -> (
    Client,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    let (client, mut connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(port)
        .user("admin")
        .password(common::ADMIN_PASSWORD)
        .dbname("backstop")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) =
            futures::future::poll_fn(|cx| connection.poll_message(cx)).await
        {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                tx.send((n.channel().to_string(), n.payload().to_string()))
                    .ok();
            }
        }
    });
    (client, rx)
}

/// The next notification, within 30 s.
async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) -> (String, serde_json::Value) {
    let (channel, payload) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a notification within 30 s")
        .expect("the session is open");
    let json = serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{payload}: {e}"));
    (channel, json)
}

/// A loopback HTTP endpoint that answers 500 to its first request and 200 after: the bodies
/// it received, in order.
async fn webhook() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 0..100 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head, then the body its Content-Length announces.
            loop {
                let read = socket.read(&mut buf).await.unwrap_or(0);
                if read == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..read]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        tx.send(text[end + 4..].to_string()).ok();
                        break;
                    }
                }
            }
            let answer = if n == 0 {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            socket
                .write_all(format!("HTTP/1.1 {answer}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                .await
                .ok();
        }
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_runs_and_job_ends_reach_listening_sessions_and_webhooks_with_retries() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    let (source, dest) = (tmp.path().join("source"), tmp.path().join("dest"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("data"), noise(9, 1 << 20)).unwrap();
    let (hook_port, mut hooks) = webhook().await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}';
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             ALTER SYSTEM SET plan_notify_retry_time = '30s';
             CREATE BACKUP POLICY yearly SCHEDULE = '@yearly';
             CREATE BACKUP PLAN p FOR TENANT app POLICY yearly NOTIFY = 'plan_events';
             CREATE BACKUP PLAN q FOR TENANT app POLICY yearly NOTIFY = 'http://127.0.0.1:{hook_port}/backstop'",
            source.display(),
            dest.display()
        ))
        .await
        .unwrap();
    assert_refused(
        &client,
        "ALTER BACKUP PLAN p SET NOTIFY = 'not a channel'",
        "22023",
        "neither a channel name nor",
    )
    .await;
    let (listener, mut events) = listening_client(server.port()).await;
    listener
        .batch_execute("LISTEN plan_events; LISTEN backstop_events")
        .await
        .unwrap();

    client
        .batch_execute("ALTER SYSTEM RUN BACKUP PLAN p WAIT")
        .await
        .unwrap();
    let (channel, run) = next_event(&mut events).await;
    assert_eq!(channel, "plan_events");
    assert_eq!(
        (
            run["event"].as_str(),
            run["plan"].as_str(),
            run["status"].as_str()
        ),
        (Some("plan_run"), Some("p"), Some("RUNNING")),
        "{run}"
    );
    let job_id = run["jobs"][0].as_i64().unwrap();
    // The job's end, on the global channel and on the plan's, in either order.
    let mut ends = vec![next_event(&mut events).await, next_event(&mut events).await];
    ends.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ends.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>(),
        ["backstop_events", "plan_events"]
    );
    for (_, end) in &ends {
        assert_eq!(end["event"], "job_end", "{end}");
        assert_eq!(end["job_id"].as_i64(), Some(job_id), "{end}");
        assert_eq!(end["kind"], "BACKUP", "{end}");
        assert_eq!(end["status"], "COMPLETED", "{end}");
        assert_eq!(end["tenant"], "app", "{end}");
        assert_eq!(end["plan"], "p", "{end}");
        assert!(end["set_id"].as_i64().is_some(), "{end}");
        assert!(end["bytes"].as_i64().unwrap() > 0, "{end}");
    }

    // UNLISTEN: the plan's channel falls silent, the global one still speaks.
    listener
        .batch_execute("UNLISTEN plan_events")
        .await
        .unwrap();
    client
        .batch_execute("ALTER SYSTEM RUN BACKUP PLAN p WAIT")
        .await
        .unwrap();
    let (channel, end) = next_event(&mut events).await;
    assert_eq!(
        (channel.as_str(), end["event"].as_str()),
        ("backstop_events", Some("job_end"))
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.recv())
            .await
            .is_err(),
        "nothing more arrives"
    );

    // A webhook: POSTed as JSON, retried after a 500, each delivery in the view.
    client
        .batch_execute("ALTER SYSTEM RUN BACKUP PLAN q WAIT")
        .await
        .unwrap();
    until(
        &client,
        "SELECT string_agg(event || ' ' || status || ' ' || attempts || ' ' || outcome, ', ' \
         ORDER BY notification_id) FROM oceanbase.cdb_ob_backup_notifications \
         WHERE target LIKE 'http://%'",
        "plan_run DELIVERED 2 HTTP 200, job_end DELIVERED 1 HTTP 200",
        Duration::from_secs(30),
    )
    .await;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let body = tokio::time::timeout(Duration::from_secs(10), hooks.recv())
            .await
            .unwrap()
            .unwrap();
        bodies.push(serde_json::from_str::<serde_json::Value>(&body).unwrap());
    }
    // The job's end may arrive between the plan run's first attempt and its retry.
    let runs: Vec<&serde_json::Value> =
        bodies.iter().filter(|b| b["event"] == "plan_run").collect();
    assert_eq!(runs.len(), 2, "{bodies:?}");
    assert_eq!(runs[0], runs[1], "the retry sends the same event");
    assert_eq!(runs[0]["plan"], "q");
    assert!(
        bodies
            .iter()
            .any(|b| b["event"] == "job_end" && b["plan"] == "q"),
        "{bodies:?}"
    );
    assert_eq!(
        value(
            &client,
            "SELECT notify FROM oceanbase.cdb_ob_backup_plans WHERE name = 'q'"
        )
        .await,
        format!("http://127.0.0.1:{hook_port}/backstop")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_of_two_tenants_and_two_policies_runs_one_job_per_tenant_with_chains_of_its_own() {
    let server = TestServer::start().await;
    let client = server.connect().await;
    let tmp = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        let source = tmp.path().join(name);
        std::fs::create_dir_all(&source).unwrap();
        std::fs::write(source.join("data"), noise(name.len() as u64, 64 << 10)).unwrap();
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
            "ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}';
             CREATE BACKUP POLICY on_the_hour SCHEDULE = '0 * * * *';
             CREATE BACKUP POLICY half_past SCHEDULE = '30 * * * *';
             CREATE BACKUP PLAN both FOR TENANT = a, b POLICY = on_the_hour, half_past;
             CREATE BACKUP PLAN only_a FOR TENANT = a POLICY = on_the_hour;
             ALTER BACKUP PLAN only_a DISABLE",
            tmp.path().join("dest").display()
        ))
        .await
        .unwrap();
    // Three steps of half an hour: three runs, each alternating between the two policies.
    let base = first_run(&client, "both").await;
    for (step, minutes) in [(1u64, 15i64), (2, 45), (3, 75)] {
        set_policy_clock(&client, base, minutes).await;
        until(
            &client,
            "SELECT count(*) FROM oceanbase.cdb_ob_backup_plan_history WHERE result = 'COMPLETED'",
            &step.to_string(),
            Duration::from_secs(60),
        )
        .await;
    }
    let policies = value(
        &client,
        "SELECT string_agg(policy_name, ',' ORDER BY run_id) FROM oceanbase.cdb_ob_backup_plan_history",
    )
    .await;
    // Each half hour is the other policy's (unless the server's own clock crossed a half hour
    // during the test, which makes one step cross two): both policies run the plan.
    assert!(
        policies.contains("on_the_hour") && policies.contains("half_past"),
        "{policies}"
    );
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(CAST(length(jobs) - length(replace(jobs, ',', '')) + 1 AS VARCHAR), ',' \
             ORDER BY run_id) FROM oceanbase.cdb_ob_backup_plan_history"
        )
        .await,
        "2,2,2",
        "one job per tenant per run"
    );
    // Each tenant has one AUTO chain of the plan with three points; the disabled plan has none.
    assert_eq!(
        value(
            &client,
            "SELECT string_agg(tenant_id || ':' || plan_name || ':' || points, ',' ORDER BY tenant_id) \
             FROM oceanbase.cdb_ob_backup_chains"
        )
        .await,
        "1001:both:3,1002:both:3"
    );
    // Enabled, the second plan keeps chains of its own for tenant a.
    client
        .batch_execute("ALTER BACKUP PLAN only_a ENABLE; ALTER SYSTEM RUN BACKUP PLAN only_a WAIT")
        .await
        .unwrap();
    until(
        &client,
        "SELECT string_agg(tenant_id || ':' || plan_name || ':' || points, ',' ORDER BY chain_id) \
         FROM oceanbase.cdb_ob_backup_chains",
        "1001:both:3,1002:both:3,1001:only_a:1",
        Duration::from_secs(30),
    )
    .await;
}
