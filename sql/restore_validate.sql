-- Restore and validation jobs.

-- OceanBase's documented columns come first, in its order, then backstop's own; the constants
-- are explained in docs/oceanbase-views.md. RESTORE_SCN is the UNTIL TIME of the restore, in
-- nanoseconds since the epoch (NULL when it restores to the newest point or to a set); a tenant
-- is one log stream; tablets do not exist (0); RESTORE_TYPE is FULL (data is always copied back).

CREATE VIEW oceanbase.cdb_ob_restore_progress AS
SELECT tenant_id, job_id, restore_tenant_name, restore_tenant_id,
       backup_tenant_name, backup_tenant_id, '' AS backup_cluster_name, backup_dest,
       restore_option, restore_scn, to_timestamp_micros(restore_scn / 1000) AS restore_scn_display,
       status, start_timestamp, backup_set_list, backup_piece_list,
       total_bytes, backstop_display_bytes(total_bytes) AS total_bytes_display,
       finish_bytes, backstop_display_bytes(finish_bytes) AS finish_bytes_display,
       description, 'FULL' AS restore_type,
       CAST(NULL AS BIGINT) AS recover_scn,
       arrow_cast(NULL, 'Timestamp(Microsecond, None)') AS recover_scn_display,
       CAST(NULL AS DOUBLE) AS recover_progress,
       0 AS tablet_count, 0 AS finish_tablet_count,
       CASE WHEN total_bytes > 0
            THEN 100.0 * CAST(finish_bytes AS DOUBLE) / CAST(total_bytes AS DOUBLE) ELSE 0.0 END
           AS restore_progress,
       restore_until, restore_target, comment,
       output_bytes AS written_bytes, finish_file_count, file_count
FROM (
    SELECT tenant_id, job_id, restore_tenant_name, restore_tenant_id, backup_tenant_name,
           backup_tenant_id, backup_dest, restore_option,
           CASE WHEN restore_until LIKE 'TIME = %'
                THEN CAST(TRY_CAST(substr(restore_until, 9, length(restore_until) - 9)
                                   AS TIMESTAMP) AS BIGINT) END AS restore_scn,
           restore_until, restore_target, status, start_ts AS start_timestamp,
           set_list AS backup_set_list, piece_list AS backup_piece_list,
           total_bytes, finish_bytes, description, comment, output_bytes,
           finish_file_count, file_count
    FROM backstop.job
    WHERE job_kind = 'RESTORE' AND status IN (${JOB_LIVE})
) r;

CREATE VIEW oceanbase.cdb_ob_restore_history AS
SELECT tenant_id, job_id, restore_tenant_name, restore_tenant_id,
       backup_tenant_name, backup_tenant_id, '' AS backup_cluster_name, backup_dest,
       restore_scn, to_timestamp_micros(restore_scn / 1000) AS restore_scn_display,
       restore_option, start_timestamp, finish_timestamp, status,
       backup_piece_list, backup_set_list, CAST(NULL AS BIGINT) AS backup_cluster_version,
       1 AS ls_count, CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END AS finish_ls_count,
       0 AS tablet_count, 0 AS finish_tablet_count,
       total_bytes, backstop_display_bytes(total_bytes) AS total_bytes_display,
       finish_bytes, backstop_display_bytes(finish_bytes) AS finish_bytes_display,
       description, comment, 'FULL' AS restore_type,
       restore_until, restore_target, result,
       output_bytes AS written_bytes, finish_file_count, file_count
FROM (
    SELECT tenant_id, job_id, restore_tenant_name, restore_tenant_id, backup_tenant_name,
           backup_tenant_id, backup_dest, restore_option,
           CASE WHEN restore_until LIKE 'TIME = %'
                THEN CAST(TRY_CAST(substr(restore_until, 9, length(restore_until) - 9)
                                   AS TIMESTAMP) AS BIGINT) END AS restore_scn,
           restore_until, restore_target, status,
           start_ts AS start_timestamp, end_ts AS finish_timestamp,
           set_list AS backup_set_list, piece_list AS backup_piece_list,
           total_bytes, finish_bytes, description, result, comment, output_bytes,
           finish_file_count, file_count
    FROM backstop.job
    WHERE job_kind = 'RESTORE' AND status IN (${JOB_ENDED})
) r;

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

-- OceanBase 3.x's validation views, over the same jobs and tasks as the views above.
-- PROGRESS_PERCENT is PROGRESS rounded down; BACKUP_DEST is where the validated set or piece
-- is; a validation reads objects (files), shown as macro blocks; partition groups and
-- partitions do not exist (0); LOG_SIZE is the size of the piece a task validates (0 for a set).
-- CDB_OB_TENANT_BACKUP_VALIDATION_TASK is 3.x's name for the running tasks (its DBA_ twin,
-- DBA_OB_TENANT_BACKUP_VALIDATION_TASK, is derived like every other, though 3.x had none).

CREATE VIEW oceanbase.cdb_ob_backup_validation_job AS
SELECT v.job_id, v.tenant_id, t.tenant_name, v.incarnation, v.backup_set_id,
       CAST(v.progress AS BIGINT) AS progress_percent, v.status
FROM oceanbase.cdb_ob_backup_validate_jobs v
LEFT JOIN backstop.tenant t ON t.tenant_id = v.tenant_id;

CREATE VIEW oceanbase.cdb_ob_backup_validation_job_history AS
SELECT v.job_id, v.tenant_id, t.tenant_name, v.incarnation, v.backup_set_id,
       CAST(v.progress AS BIGINT) AS progress_percent, v.status
FROM oceanbase.cdb_ob_backup_validate_job_history v
LEFT JOIN backstop.tenant t ON t.tenant_id = v.tenant_id;

CREATE VIEW oceanbase.cdb_ob_tenant_backup_validation_task AS
SELECT job_id, task_id, tenant_id, incarnation, backup_set_id, status, path AS backup_dest,
       start_timestamp AS start_time, end_timestamp AS end_time,
       0 AS total_pg_count, 0 AS finish_pg_count, 0 AS total_partition_count,
       0 AS finish_partition_count, total_object_count AS total_macro_block_count,
       finish_object_count AS finish_macro_block_count,
       CASE WHEN backup_piece_id IS NOT NULL THEN total_bytes ELSE 0 END AS log_size
FROM oceanbase.cdb_ob_backup_validate_tasks;

CREATE VIEW oceanbase.cdb_ob_backup_validation_task_history AS
SELECT job_id, task_id, tenant_id, incarnation, backup_set_id, status, path AS backup_dest,
       start_timestamp AS start_time, end_timestamp AS end_time,
       0 AS total_pg_count, 0 AS finish_pg_count, 0 AS total_partition_count,
       0 AS finish_partition_count, total_object_count AS total_macro_block_count,
       finish_object_count AS finish_macro_block_count,
       CASE WHEN backup_piece_id IS NOT NULL THEN total_bytes ELSE 0 END AS log_size
FROM oceanbase.cdb_ob_backup_validate_task_history;
