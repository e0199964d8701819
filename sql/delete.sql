-- Deletion of sets and pieces, by statement or by retention policy.

CREATE VIEW oceanbase.cdb_ob_backup_delete_jobs AS
SELECT tenant_id, job_id, incarnation, initiator_tenant_id, initiator_job_id,
       executor_tenant_id, job_type AS type, parameter, job_level,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       result, comment, path
FROM backstop.job
WHERE job_kind = 'DELETE' AND status IN (${JOB_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_delete_job_history AS
SELECT tenant_id, job_id, incarnation, initiator_tenant_id, initiator_job_id,
       executor_tenant_id, job_type AS type, parameter, job_level,
       start_ts AS start_timestamp, end_ts AS end_timestamp, status,
       result, comment, path
FROM backstop.job
WHERE job_kind = 'DELETE' AND status IN (${JOB_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_delete_tasks AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.piece_id AS backup_piece_id, t.copy_id, t.start_ts AS start_timestamp,
       t.end_ts AS end_timestamp, t.status, t.file_count AS total_item_count,
       t.finish_file_count AS finish_item_count, t.result, t.comment, t.path
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'DELETE' AND t.status IN (${TASK_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_delete_task_history AS
SELECT t.tenant_id, t.task_id, t.job_id, t.incarnation, t.backup_set_id,
       t.piece_id AS backup_piece_id, t.copy_id, t.start_ts AS start_timestamp,
       t.end_ts AS end_timestamp, t.status, t.file_count AS total_item_count,
       t.finish_file_count AS finish_item_count, t.result, t.comment, t.path
FROM backstop.task t JOIN backstop.job j ON t.job_id = j.job_id
WHERE j.job_kind = 'DELETE' AND t.status IN (${TASK_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_delete_policy AS
SELECT tenant_id, policy_name, recovery_window, create_time
FROM backstop.delete_policy;
