-- Restore and validation jobs.

CREATE VIEW oceanbase.cdb_ob_restore_progress AS
SELECT tenant_id, job_id, restore_tenant_name, restore_tenant_id,
       backup_tenant_name, backup_tenant_id, backup_dest, restore_option,
       restore_until, restore_target, status, start_ts AS start_timestamp,
       set_list AS backup_set_list, piece_list AS backup_piece_list,
       total_bytes, backstop_display_bytes(total_bytes) AS total_bytes_display,
       finish_bytes, backstop_display_bytes(finish_bytes) AS finish_bytes_display,
       description, comment
FROM backstop.job
WHERE job_kind = 'RESTORE' AND status IN (${JOB_LIVE});

CREATE VIEW oceanbase.cdb_ob_restore_history AS
SELECT tenant_id, job_id, restore_tenant_name, restore_tenant_id,
       backup_tenant_name, backup_tenant_id, backup_dest, restore_option,
       restore_until, restore_target, status,
       start_ts AS start_timestamp, end_ts AS finish_timestamp,
       set_list AS backup_set_list, piece_list AS backup_piece_list,
       total_bytes, backstop_display_bytes(total_bytes) AS total_bytes_display,
       finish_bytes, backstop_display_bytes(finish_bytes) AS finish_bytes_display,
       description, result, comment
FROM backstop.job
WHERE job_kind = 'RESTORE' AND status IN (${JOB_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_validate_jobs AS
SELECT tenant_id, job_id, incarnation, job_type AS type, backup_set_id,
       piece_id AS backup_piece_id, validate_level AS level,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       total_bytes, finish_bytes,
       CASE WHEN total_bytes > 0
            THEN 100.0 * CAST(finish_bytes AS DOUBLE) / CAST(total_bytes AS DOUBLE) ELSE 0.0 END
           AS progress,
       result, comment, description, path
FROM backstop.job
WHERE job_kind = 'VALIDATE' AND status IN (${JOB_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_validate_job_history AS
SELECT tenant_id, job_id, incarnation, job_type AS type, backup_set_id,
       piece_id AS backup_piece_id, validate_level AS level,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       total_bytes, finish_bytes,
       CASE WHEN total_bytes > 0
            THEN 100.0 * CAST(finish_bytes AS DOUBLE) / CAST(total_bytes AS DOUBLE) ELSE 0.0 END
           AS progress,
       result, comment, description, path
FROM backstop.job
WHERE job_kind = 'VALIDATE' AND status IN (${JOB_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_validate_tasks AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.piece_id AS backup_piece_id, t.start_ts AS start_timestamp,
       t.end_ts AS end_timestamp, t.status, t.total_bytes, t.input_bytes AS finish_bytes,
       t.file_count AS total_object_count, t.finish_file_count AS finish_object_count,
       t.data_progress AS progress, t.result, t.comment, t.path
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'VALIDATE' AND t.status IN (${TASK_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_validate_task_history AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.piece_id AS backup_piece_id, t.start_ts AS start_timestamp,
       t.end_ts AS end_timestamp, t.status, t.total_bytes, t.input_bytes AS finish_bytes,
       t.file_count AS total_object_count, t.finish_file_count AS finish_object_count,
       t.data_progress AS progress, t.result, t.comment, t.path
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'VALIDATE' AND t.status IN (${TASK_ENDED});
