//! What a DBA sees while waiting: every job kind's WAIT sends progress NOTICEs in its own words
//! (a backup reads, a restore writes, a validation checks, a copy sends, a deletion reclaims),
//! at most one a second, and a last line with the job's end whose figures match the views. A
//! nightly copy with nothing to copy succeeds and says so.

mod common;

use std::time::Instant;

use common::tree::{assert_same_tree, fidelity_tree, noise};
use common::{TestServer, drain, noticing_client, value};
use tokio_postgres::Client;

/// Runs `sql` (ending in WAIT) on a noticing connection; returns every NOTICE and the seconds
/// the statement took as the client saw them.
async fn waited(port: u16, sql: &str) -> (Vec<String>, f64) {
    let (client, mut notices) = noticing_client(port).await;
    let started = Instant::now();
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let seconds = started.elapsed().as_secs_f64();
    // The notices were sent before the command's completion, on the same connection.
    drop(client);
    let mut lines = drain(&mut notices);
    while let Some(line) = notices.recv().await {
        lines.push(line);
    }
    (lines, seconds)
}

/// The numbers of `text`, in order.
fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.trim_matches('.').parse().ok())
        .collect()
}

/// `1.50MB` back to bytes.
fn display_bytes(text: &str) -> Option<f64> {
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let number: f64 = text[..text.len() - unit.len()].parse().ok()?;
    let scale = ["B", "KB", "MB", "GB", "TB"]
        .iter()
        .position(|u| *u == unit)?;
    Some(number * 1024f64.powi(scale as i32))
}

async fn last_job(client: &Client, view: &str) -> String {
    value(
        client,
        &format!("SELECT coalesce(max(job_id), 0) FROM {view}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn every_job_kind_reports_its_progress_and_ends_with_a_result_line() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let source = root.join("source");
    fidelity_tree(&source);
    for i in 0..6 {
        std::fs::write(source.join(format!("big-{i}.bin")), noise(10 + i, 1 << 20)).unwrap();
    }
    let server = TestServer::start().await;
    let port = server.port();
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TENANT app SOURCE = 'dir://{}'; \
             ALTER SYSTEM SET DATA_BACKUP_DEST = 'file://{}'; \
             ALTER SYSTEM SET BACKUP_BACKUP_DEST = 'file://{}'",
            source.display(),
            root.join("dest").display(),
            root.join("copy").display()
        ))
        .await
        .unwrap();

    // A nightly copy before there is any set: success, a NOTICE saying why, a job of no tasks.
    let (lines, _) = waited(port, "ALTER SYSTEM BACKUP BACKUPSET ALL WAIT").await;
    let job = last_job(&client, "cdb_ob_backup_backupset_job_history").await;
    assert!(
        lines[0].starts_with("no backup set needs a copy")
            && lines[0].ends_with(&format!("job {job} recorded with 0 tasks")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &format!("job {job} FINISH: 0/0 tasks completed, 0 objects, 0B sent"),
        "{lines:?}"
    );
    // Without WAIT too: the statement succeeds with the NOTICE.
    let (lines, _) = waited(port, "ALTER SYSTEM BACKUP BACKUPPIECE ALL").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("no backup piece needs a copy"),
        "{lines:?}"
    );

    let (lines, _) = waited(port, "ALTER SYSTEM BACKUP TENANT app WAIT").await;
    let job = last_job(&client, "cdb_ob_backup_job_history").await;
    let (files, input) = {
        let row = value(
            &client,
            "SELECT finish_file_count || ' ' || input_bytes FROM cdb_ob_backup_task_history WHERE job_id = (SELECT max(job_id) FROM cdb_ob_backup_task_history)",
        )
        .await;
        let v = numbers(&row);
        (v[0], v[1])
    };
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!(
            "job {job} COMPLETED: 1/1 tasks completed, {files}/"
        )) && last.contains("read (100.0%), "),
        "{last}"
    );
    assert!(
        files > 10.0 && input > 6.0 * 1024.0 * 1024.0,
        "{files} {input}"
    );

    // A restore: entries written of the set's entries, bytes of the set's bytes.
    let target = root.join("restored");
    let (lines, _) = waited(
        port,
        &format!(
            "ALTER SYSTEM RESTORE copy FROM app TO 'dir://{}' WAIT",
            target.display()
        ),
    )
    .await;
    assert_same_tree(&source, &target);
    let job = last_job(&client, "cdb_ob_restore_history").await;
    let set_files = value(&client, "SELECT file_count FROM cdb_ob_backup_set_files").await;
    let (restored, written) = {
        let row = value(
            &client,
            "SELECT finish_bytes_display || ' of ' || total_bytes_display || '|' || \
             backstop_display_bytes(written_bytes) FROM cdb_ob_restore_history",
        )
        .await;
        let (a, b) = row.split_once('|').unwrap();
        (a.to_string(), b.to_string())
    };
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "job {job} COMPLETED: {set_files}/{set_files} files, {restored} restored (100.0%), \
             {written} written"
        ),
        "{lines:?}"
    );
    // Holes are restored by the file's size, not written: 5 GiB restored, megabytes written.
    let written_bytes: i64 = value(&client, "SELECT written_bytes FROM cdb_ob_restore_history")
        .await
        .parse()
        .unwrap();
    assert!(
        (1 << 20..1 << 30).contains(&written_bytes),
        "{written_bytes}"
    );

    // A physical validation: objects and bytes checked.
    let (lines, _) = waited(
        port,
        "ALTER SYSTEM VALIDATE BACKUPSET 1 LEVEL = 'physical' WAIT",
    )
    .await;
    let job = last_job(&client, "cdb_ob_backup_validate_job_history").await;
    let row = value(
        &client,
        "SELECT finish_object_count || '/' || total_object_count || ' objects, ' || \
         backstop_display_bytes(finish_bytes) || ' of ' || backstop_display_bytes(total_bytes) \
         FROM cdb_ob_backup_validate_task_history",
    )
    .await;
    assert_eq!(
        lines.last().unwrap(),
        &format!("job {job} COMPLETED: 1/1 tasks completed, {row} checked (100.0%)"),
        "{lines:?}"
    );
    assert!(numbers(&row)[0] > 0.0, "{row}");

    // A copy of the set: objects and bytes sent.
    let (lines, _) = waited(port, "ALTER SYSTEM BACKUP BACKUPSET ALL WAIT").await;
    let job = last_job(&client, "cdb_ob_backup_backupset_job_history").await;
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!("job {job} FINISH: 1/1 tasks completed, "))
            && last.ends_with("sent (100.0%)"),
        "{lines:?}"
    );
    let sent = numbers(last.split(", ").nth(1).unwrap());
    assert!(sent[0] > 0.0 && sent[0] == sent[1], "{last}");

    // A deletion of the copy's source set needs a second set to keep; it reclaims bytes.
    std::fs::remove_file(source.join("big-0.bin")).unwrap();
    client
        .batch_execute("ALTER SYSTEM BACKUP TENANT app WAIT")
        .await
        .unwrap();
    client
        .batch_execute("ALTER SYSTEM SET backup_gc_grace_period = '0s'")
        .await
        .unwrap();
    let (lines, _) = waited(port, "ALTER SYSTEM DELETE BACKUPSET 1 WAIT").await;
    let job = last_job(&client, "cdb_ob_backup_delete_job_history").await;
    let reclaimed = value(
        &client,
        "SELECT backstop_display_bytes(reclaimed_bytes) FROM cdb_ob_backup_delete_job_history",
    )
    .await;
    assert_eq!(
        lines.last().unwrap(),
        &format!("job {job} COMPLETED: 1/1 tasks completed, {reclaimed} reclaimed"),
        "{lines:?}"
    );
    assert_ne!(reclaimed, "0B", "the full set's own data is reclaimed");
    assert_no_zero_lines(&lines);

    let slow_source = root.join("slow");
    std::fs::create_dir_all(&slow_source).unwrap();
    for i in 0..8 {
        std::fs::write(
            slow_source.join(format!("part-{i}")),
            noise(50 + i, 4 << 20),
        )
        .unwrap();
    }
    client
        .batch_execute(&format!(
            "CREATE TENANT slow SOURCE = 'dir://{}'",
            slow_source.display()
        ))
        .await
        .unwrap();
    // A backup of 32 MiB (four packs) slowed to 4 MB/s, its packs made durable at a checkpoint every second:
    // lines while it runs, at most one a second, then the end.
    client
        .batch_execute(
            "ALTER SYSTEM SET backup_net_limit = '4MB'; \
             ALTER SYSTEM SET backup_checkpoint_interval = '1s'; \
             ALTER SYSTEM SET backup_checkpoint_min_bytes = '1MB'",
        )
        .await
        .unwrap();
    let (lines, seconds) = waited(port, "ALTER SYSTEM BACKUP TENANT slow WAIT").await;
    client
        .batch_execute("ALTER SYSTEM SET backup_net_limit = '0'")
        .await
        .unwrap();
    let job = last_job(&client, "cdb_ob_backup_job_history").await;
    let running: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("job {job} DOING: ")))
        .collect();
    assert!(
        !running.is_empty(),
        "a backup of several seconds ({seconds:.1}s) shows its progress: {lines:?}"
    );
    assert!(
        (running.len() as f64) <= seconds + 2.0,
        "{} lines in {seconds:.1}s: {lines:?}",
        running.len()
    );
    // Reading runs ahead of the throttled writes: a line while it runs shows part of the bytes
    // made durable, the last one all of them.
    let written: Vec<f64> = lines
        .iter()
        .filter_map(|l| display_bytes(l.rsplit(", ").next()?.trim_end_matches(" written")))
        .collect();
    let last = *written.last().unwrap();
    assert!(last >= 32.0 * 1024.0 * 1024.0, "{lines:?}");
    assert!(
        written.windows(2).all(|w| w[0] <= w[1])
            && written[..written.len() - 1].iter().all(|w| *w < last),
        "progress moves forward: {lines:?}"
    );
    assert!(
        lines.last().unwrap().starts_with(&format!(
            "job {job} COMPLETED: 1/1 tasks completed, 9/9 files, 32.00MB of 32.00MB read (100.0%)"
        )),
        "{lines:?}"
    );
}

/// No line of a job that did work says it did none (the old WAIT said "0/0 tasks completed,
/// 0.0% of 0B read" for every restore).
fn assert_no_zero_lines(lines: &[String]) {
    for line in lines {
        assert!(!line.contains("0/0 tasks"), "{line}");
    }
}
