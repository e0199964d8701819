-- Data backup jobs and tasks (4.x names), their history, and the 3.x progress views.
-- A job is in the base view while it can still change; it moves to _HISTORY when it ends.
-- ${JOB_LIVE}, ${JOB_ENDED}, ${TASK_LIVE}, ${TASK_ENDED}, ${COPY_LIVE} and ${COPY_ENDED} are
-- the state machines' word lists (src/catalog/status.rs), put in when the views are loaded.

CREATE VIEW oceanbase.cdb_ob_backup_jobs AS
SELECT tenant_id, job_id, incarnation, backup_set_id, initiator_tenant_id, initiator_job_id,
       executor_tenant_id,
       CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog,
       backup_type, job_level, encryption_mode,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       result, comment, description, path, stop_mode, restart_pass, plan_name, chain_id
FROM backstop.job
WHERE job_kind = 'BACKUP'
  AND status IN (${JOB_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_job_history AS
SELECT tenant_id, job_id, incarnation, backup_set_id, initiator_tenant_id, initiator_job_id,
       executor_tenant_id,
       CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog,
       backup_type, job_level, encryption_mode,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       result, comment, description, path, stop_mode, restart_pass, plan_name, chain_id
FROM backstop.job
WHERE job_kind = 'BACKUP'
  AND status IN (${JOB_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_tasks AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.start_ts AS start_timestamp, t.end_ts AS end_timestamp, t.status,
       t.input_bytes, t.output_bytes, t.output_rate_bytes, t.file_count, t.finish_file_count,
       t.data_progress, t.result, t.comment, t.path, t.restart_pass, t.context_id
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'BACKUP'
  AND t.status IN (${TASK_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_task_history AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.start_ts AS start_timestamp, t.end_ts AS end_timestamp, t.status,
       t.input_bytes, t.output_bytes, t.output_rate_bytes, t.file_count, t.finish_file_count,
       t.data_progress, t.result, t.comment, t.path, t.restart_pass, t.context_id
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'BACKUP'
  AND t.status IN (${TASK_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_set_files AS
SELECT tenant_id, backup_set_id, dest_id, incarnation, backup_type,
       prev_full_backup_set_id, prev_inc_backup_set_id,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status, file_status,
       CAST(date_part('epoch', end_ts) - date_part('epoch', start_ts) AS BIGINT) AS elapsed_seconds,
       CASE WHEN plus_archivelog = 1 THEN 'ON' ELSE 'OFF' END AS plus_archivelog,
       input_bytes, output_bytes, file_count, encryption_mode, copy_id, chain_id,
       result, comment, path,
       COALESCE(cleanup_pending, 0) = 1 AS is_cleanup_pending
FROM backstop.backup_set;

-- 3.x: one row per running task, with 3.x status words.
CREATE VIEW oceanbase.cdb_ob_backup_progress AS
SELECT t.tenant_id, j.incarnation, t.backup_set_id AS bs_key, t.job_id,
       j.backup_type,
       CASE t.status WHEN 'INIT' THEN 'SCHEDULE' WHEN 'DOING' THEN 'RUNNING' ELSE t.status END
           AS status,
       t.start_ts AS start_time, t.end_ts AS end_time,
       t.input_bytes, t.output_bytes, t.file_count AS macro_block_count,
       t.finish_file_count AS finish_macro_block_count,
       CASE WHEN t.input_bytes > 0
            THEN CAST(t.input_bytes AS DOUBLE) / GREATEST(CAST(t.output_bytes AS DOUBLE), 1.0)
            ELSE 0.0 END AS compression_ratio,
       t.data_progress, t.comment
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'BACKUP'
  AND t.status IN (${TASK_LIVE});

-- 3.x: every set with its sizes and 3.x status words.
CREATE VIEW oceanbase.cdb_ob_backup_set_details AS
SELECT tenant_id, incarnation, backup_set_id AS bs_key, copy_id, backup_type,
       CASE WHEN encryption_mode IS NULL OR encryption_mode = 'NONE' THEN 'FALSE' ELSE 'TRUE' END
           AS encrypted,
       start_ts AS start_time, end_ts AS completion_time,
       CAST(date_part('epoch', end_ts) - date_part('epoch', start_ts) AS BIGINT) AS elapsed_seconds,
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
FROM backstop.backup_set;
