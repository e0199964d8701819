-- Data backup jobs and tasks (4.x names), their history, and the 3.x progress views.
-- A job is in the base view while it can still change; it moves to _HISTORY when it ends.
-- ${JOB_LIVE}, ${JOB_ENDED}, ${TASK_LIVE}, ${TASK_ENDED}, ${COPY_LIVE} and ${COPY_ENDED} are
-- the state machines' word lists (src/catalog/status.rs), put in when the views are loaded.
--
-- OceanBase's documented columns come first, in its order, then backstop's own; the constants
-- are listed with their reasons in docs/oceanbase-views.md. In short: PASSWD is always '' (no
-- password is ever shown); SCNs are nanoseconds since the epoch, taken from the times backstop
-- records (a backup starts at START_TIMESTAMP and is consistent at END_TIMESTAMP); a backup's
-- unit is the file, so macro-block counts are file counts (as CDB_OB_BACKUP_PROGRESS always
-- showed); tablets, log streams and partitions do not exist (0); backstop backs up in one pass
-- (every TURN_ID is 1); COMPATIBLE columns are 1, backstop's repository format version.

CREATE VIEW oceanbase.cdb_ob_backup_jobs AS
SELECT tenant_id, job_id, incarnation, backup_set_id, initiator_tenant_id, initiator_job_id,
       executor_tenant_id,
       CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog,
       backup_type, job_level, encryption_mode, '' AS passwd,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       result, comment, description, path, stop_mode, restart_pass, plan_name, chain_id
FROM backstop.job
WHERE job_kind = 'BACKUP'
  AND status IN (${JOB_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_job_history AS
SELECT tenant_id, job_id, incarnation, backup_set_id, initiator_tenant_id, initiator_job_id,
       executor_tenant_id,
       CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog,
       backup_type, job_level, encryption_mode, '' AS passwd,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       result, comment, description, path, stop_mode, restart_pass, plan_name, chain_id
FROM backstop.job
WHERE job_kind = 'BACKUP'
  AND status IN (${JOB_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_tasks AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.start_ts AS start_timestamp, t.end_ts AS end_timestamp, t.status,
       CAST(t.start_ts AS BIGINT) * 1000 AS start_scn,
       CAST(t.end_ts AS BIGINT) * 1000 AS end_scn,
       CAST(NULL AS BIGINT) AS user_ls_start_scn,
       j.encryption_mode, '' AS passwd,
       t.input_bytes, t.output_bytes, t.output_rate_bytes,
       0 AS extra_meta_bytes, 0 AS tablet_count, 0 AS finish_tablet_count,
       t.file_count AS macro_block_count, t.finish_file_count AS finish_macro_block_count,
       t.file_count, 1 AS meta_turn_id, 1 AS data_turn_id,
       t.result, t.comment, t.path, 1 AS minor_turn_id, 1 AS major_turn_id,
       t.data_progress, 0 AS log_file_count, 0 AS finish_log_file_count, 0.0 AS log_progress,
       t.finish_file_count, t.restart_pass, t.context_id
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'BACKUP'
  AND t.status IN (${TASK_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_task_history AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.start_ts AS start_timestamp, t.end_ts AS end_timestamp, t.status,
       CAST(t.start_ts AS BIGINT) * 1000 AS start_scn,
       CAST(t.end_ts AS BIGINT) * 1000 AS end_scn,
       CAST(NULL AS BIGINT) AS user_ls_start_scn,
       j.encryption_mode, '' AS passwd,
       t.input_bytes, t.output_bytes, t.output_rate_bytes,
       0 AS extra_meta_bytes, 0 AS tablet_count, 0 AS finish_tablet_count,
       t.file_count AS macro_block_count, t.finish_file_count AS finish_macro_block_count,
       t.file_count, 1 AS meta_turn_id, 1 AS data_turn_id,
       t.result, t.comment, t.path, 1 AS minor_turn_id, 1 AS major_turn_id,
       t.finish_file_count, t.data_progress, t.restart_pass, t.context_id
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'BACKUP'
  AND t.status IN (${TASK_ENDED});

-- A set is recorded when its backup completes, so all its files are backed up. Logs replay
-- from the backup's start; the set is consistent, and the earliest point it restores to, at
-- its end. OUTPUT_RATE_BYTES is bytes written per second, as the tasks compute it.
CREATE VIEW oceanbase.cdb_ob_backup_set_files AS
SELECT tenant_id, backup_set_id, dest_id, incarnation, backup_type,
       prev_full_backup_set_id, prev_inc_backup_set_id,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status, file_status,
       CAST(date_part('epoch', end_ts) - date_part('epoch', start_ts) AS BIGINT)
           AS elapsed_secondes,
       CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog,
       CAST(start_ts AS BIGINT) * 1000 AS start_replay_scn,
       start_ts AS start_replay_scn_display,
       CAST(end_ts AS BIGINT) * 1000 AS min_restore_scn,
       end_ts AS min_restore_scn_display,
       input_bytes, output_bytes,
       CASE WHEN end_ts IS NOT NULL
            THEN CAST(output_bytes AS DOUBLE)
                 / GREATEST(date_part('epoch', end_ts) - date_part('epoch', start_ts), 0.001)
       END AS output_rate_bytes,
       0 AS extra_meta_bytes, 0 AS tablet_count, 0 AS finish_tablet_count,
       file_count AS macro_block_count, file_count AS finish_macro_block_count,
       file_count, 1 AS meta_turn_id, 1 AS data_turn_id,
       result, comment, encryption_mode, '' AS passwd,
       arrow_cast(NULL, 'Utf8') AS tenant_compatible, 1 AS backup_compatible, path,
       arrow_cast(NULL, 'Utf8') AS cluster_version,
       CAST(end_ts AS BIGINT) * 1000 AS consistent_scn,
       1 AS minor_turn_id, 1 AS major_turn_id,
       CAST(date_part('epoch', end_ts) - date_part('epoch', start_ts) AS BIGINT)
           AS elapsed_seconds,
       copy_id, chain_id,
       COALESCE(cleanup_pending, 0) = 1 AS is_cleanup_pending
FROM backstop.backup_set;

-- 3.x: one row per running task, with 3.x status words.
CREATE VIEW oceanbase.cdb_ob_backup_progress AS
SELECT j.incarnation, t.backup_set_id AS bs_key, j.backup_type, t.tenant_id,
       0 AS partition_count, t.file_count AS macro_block_count,
       0 AS finish_partition_count, t.finish_file_count AS finish_macro_block_count,
       t.input_bytes, t.output_bytes,
       t.start_ts AS start_time, t.end_ts AS completion_time,
       CASE t.status WHEN 'INIT' THEN 'SCHEDULE' WHEN 'DOING' THEN 'RUNNING' ELSE t.status END
           AS status,
       t.job_id, t.end_ts AS end_time,
       CASE WHEN t.input_bytes > 0
            THEN CAST(t.input_bytes AS DOUBLE) / GREATEST(CAST(t.output_bytes AS DOUBLE), 1.0)
            ELSE 0.0 END AS compression_ratio,
       t.data_progress, t.comment
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'BACKUP'
  AND t.status IN (${TASK_LIVE});

-- 3.x: every set with its sizes and 3.x status words. DEVICE_TYPE is the scheme of the set's
-- destination URI (file); TIME_TAKEN_DISPLAY is HH:MM:SS (hours may pass 24, as in MySQL).
CREATE VIEW oceanbase.cdb_ob_backup_set_details AS
SELECT incarnation, tenant_id, bs_key, backup_type, encryption_mode,
       start_time, completion_time, elapsed_seconds AS elapsed_secondes, keep,
       '' AS keep_until,
       CASE WHEN strpos(backup_dest, '://') > 0 THEN split_part(backup_dest, '://', 1)
            ELSE 'file' END AS device_type,
       CASE WHEN output_bytes < input_bytes THEN 'YES' ELSE 'NO' END AS compressed,
       output_bytes, output_rate_bytes, compression_ratio, output_bytes_display,
       backstop_display_bytes(CAST(output_rate_bytes AS BIGINT)) || '/S'
           AS output_rate_bytes_display,
       CASE WHEN elapsed_seconds < 36000 THEN '0' ELSE '' END
           || CAST(elapsed_seconds / 3600 AS VARCHAR) || ':'
           || lpad(CAST((elapsed_seconds % 3600) / 60 AS VARCHAR), 2, '0') || ':'
           || lpad(CAST(elapsed_seconds % 60 AS VARCHAR), 2, '0') AS time_taken_display,
       status,
       copy_id, encrypted, elapsed_seconds, input_bytes, input_bytes_display, file_status,
       backup_dest
FROM (
    SELECT tenant_id, incarnation, backup_set_id AS bs_key, copy_id, backup_type,
           encryption_mode,
           CASE WHEN encryption_mode IS NULL OR encryption_mode = 'NONE' THEN 'FALSE'
                ELSE 'TRUE' END AS encrypted,
           start_ts AS start_time, end_ts AS completion_time,
           CAST(date_part('epoch', end_ts) - date_part('epoch', start_ts) AS BIGINT)
               AS elapsed_seconds,
           CASE WHEN end_ts IS NOT NULL
                THEN CAST(output_bytes AS DOUBLE)
                     / GREATEST(date_part('epoch', end_ts) - date_part('epoch', start_ts), 0.001)
           END AS output_rate_bytes,
           CASE WHEN status = 'COMPLETED' THEN 'FALSE' ELSE 'TRUE' END AS keep,
           input_bytes, output_bytes,
           backstop_display_bytes(input_bytes) AS input_bytes_display,
           backstop_display_bytes(output_bytes) AS output_bytes_display,
           CASE WHEN output_bytes > 0
                THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
               AS compression_ratio,
           CASE status WHEN 'COMPLETED' THEN 'COMPLETED' WHEN 'FAILED' THEN 'FAILED'
                       ELSE 'RUNNING' END AS status,
           file_status, path AS backup_dest
    FROM backstop.backup_set
) s;
