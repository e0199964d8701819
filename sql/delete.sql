-- Deletion of sets and pieces, by statement or by retention policy. The 4.x views carry
-- OceanBase's columns in its order, then backstop's own (PATH of the job, the set, piece and
-- copy of a task). A task's TOTAL_BYTES and TOTAL_FILES_COUNT are the size and files of its set
-- or piece, all counted deleted when the task completes (a set's space is then reclaimed by the
-- job's collection: RECLAIMED_BYTES); a tenant is one log stream, as OceanBase counts them.

CREATE VIEW oceanbase.cdb_ob_backup_delete_jobs AS
SELECT j.tenant_id, j.job_id, j.incarnation, j.initiator_tenant_id, j.initiator_job_id,
       j.executor_tenant_id, j.job_type AS type, j.parameter, j.job_level,
       j.start_ts AS start_timestamp, j.end_ts AS end_timestamp, j.status,
       COALESCE(c.task_count, 0) AS task_count,
       COALESCE(c.success_task_count, 0) AS success_task_count,
       j.result, j.comment, j.path, j.finish_bytes AS reclaimed_bytes
FROM backstop.job j
LEFT JOIN (SELECT job_id, count(*) AS task_count,
                  sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS success_task_count
           FROM backstop.task GROUP BY job_id) c ON c.job_id = j.job_id
WHERE j.job_kind = 'DELETE' AND j.status IN (${JOB_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_delete_job_history AS
SELECT j.tenant_id, j.job_id, j.incarnation, j.initiator_tenant_id, j.initiator_job_id,
       j.executor_tenant_id, j.job_type AS type, j.parameter, j.job_level,
       j.start_ts AS start_timestamp, j.end_ts AS end_timestamp, j.status,
       COALESCE(c.task_count, 0) AS task_count,
       COALESCE(c.success_task_count, 0) AS success_task_count,
       j.result, j.comment, j.path, j.finish_bytes AS reclaimed_bytes
FROM backstop.job j
LEFT JOIN (SELECT job_id, count(*) AS task_count,
                  sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS success_task_count
           FROM backstop.task GROUP BY job_id) c ON c.job_id = j.job_id
WHERE j.job_kind = 'DELETE' AND j.status IN (${JOB_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_delete_tasks AS
SELECT t.tenant_id, t.task_id, t.incarnation, t.job_id,
       CASE WHEN t.piece_id IS NULL THEN 'BACKUP SET' ELSE 'BACKUP PIECE' END AS task_type,
       COALESCE(t.piece_id, t.backup_set_id) AS id,
       COALESCE(p.round_id, 0) AS round_id, 1 AS dest_id,
       t.start_ts AS start_timestamp, t.end_ts AS end_timestamp, t.status,
       1 AS total_ls_count,
       CASE WHEN t.status = 'COMPLETED' THEN 1 ELSE 0 END AS finish_ls_count,
       COALESCE(p.output_bytes, s.output_bytes, 0) AS total_bytes,
       CASE WHEN t.status = 'COMPLETED' THEN COALESCE(p.output_bytes, s.output_bytes, 0)
            ELSE 0 END AS delete_bytes,
       COALESCE(p.file_count, s.file_count, 0) AS total_files_count,
       CASE WHEN t.status = 'COMPLETED' THEN COALESCE(p.file_count, s.file_count, 0)
            ELSE 0 END AS delete_files_count,
       t.result, t.comment, t.path,
       t.backup_set_id, t.piece_id AS backup_piece_id, t.copy_id
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
LEFT JOIN backstop.archive_piece p ON p.piece_id = t.piece_id AND p.copy_id = t.copy_id
LEFT JOIN backstop.backup_set s ON s.backup_set_id = t.backup_set_id AND s.copy_id = t.copy_id
WHERE j.job_kind = 'DELETE' AND t.status IN (${TASK_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_delete_task_history AS
SELECT t.tenant_id, t.task_id, t.incarnation, t.job_id,
       CASE WHEN t.piece_id IS NULL THEN 'BACKUP SET' ELSE 'BACKUP PIECE' END AS task_type,
       COALESCE(t.piece_id, t.backup_set_id) AS id,
       COALESCE(p.round_id, 0) AS round_id, 1 AS dest_id,
       t.start_ts AS start_timestamp, t.end_ts AS end_timestamp, t.status,
       1 AS total_ls_count,
       CASE WHEN t.status = 'COMPLETED' THEN 1 ELSE 0 END AS finish_ls_count,
       COALESCE(p.output_bytes, s.output_bytes, 0) AS total_bytes,
       CASE WHEN t.status = 'COMPLETED' THEN COALESCE(p.output_bytes, s.output_bytes, 0)
            ELSE 0 END AS delete_bytes,
       COALESCE(p.file_count, s.file_count, 0) AS total_files_count,
       CASE WHEN t.status = 'COMPLETED' THEN COALESCE(p.file_count, s.file_count, 0)
            ELSE 0 END AS delete_files_count,
       t.result, t.comment, t.path,
       t.backup_set_id, t.piece_id AS backup_piece_id, t.copy_id
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
LEFT JOIN backstop.archive_piece p ON p.piece_id = t.piece_id AND p.copy_id = t.copy_id
LEFT JOIN backstop.backup_set s ON s.backup_set_id = t.backup_set_id AND s.copy_id = t.copy_id
WHERE j.job_kind = 'DELETE' AND t.status IN (${TASK_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_delete_policy AS
SELECT tenant_id, policy_name, recovery_window, create_time
FROM backstop.delete_policy;

-- 3.x: one row per ended cleanup job. BS_KEY is the first set the job deleted (0 for an
-- obsolete cleanup); ERROR_MSG the SQLSTATE of a failure.
CREATE VIEW oceanbase.cdb_ob_backup_clean_history AS
SELECT j.tenant_id, COALESCE(j.backup_set_id, 0) AS bs_key,
       j.start_ts AS start_time, j.end_ts AS end_time, j.incarnation,
       j.job_type AS type, j.status, j.parameter,
       COALESCE(j.error_code, '') AS error_msg, j.comment,
       COALESCE(c.copy_id, 0) AS copy_id, j.job_id
FROM backstop.job j
LEFT JOIN (SELECT job_id, max(copy_id) AS copy_id FROM backstop.task GROUP BY job_id) c
       ON c.job_id = j.job_id
WHERE j.job_kind = 'DELETE' AND j.status IN (${JOB_ENDED});
