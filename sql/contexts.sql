-- Restartable contexts of interrupted data backup tasks (NetApp's restartable dump contexts),
-- and those DELETE BACKUP CONTEXT released whose partial data the collector has not reclaimed
-- yet (IS_CLEANUP_PENDING).

CREATE VIEW oceanbase.cdb_ob_backup_restartable_contexts AS
SELECT context_id, job_id, task_id, tenant_id, path, snapshot_name,
       is_cleanup_pending = 1 AS is_cleanup_pending,
       is_restartable = 1 AS is_restartable,
       is_busy = 1 AS is_busy,
       restart_pass, bytes_done, files_done, checkpoint_time, last_updated, reason
FROM backstop.restartable_context
UNION ALL
SELECT context_id, job_id, task_id, tenant_id, path, snapshot_name,
       true AS is_cleanup_pending, false AS is_restartable, false AS is_busy,
       restart_pass, bytes_done, files_done, checkpoint_time, last_updated, reason
FROM backstop.released_context;
