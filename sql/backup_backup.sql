-- Backup-backup: copies of sets and pieces to BACKUP_BACKUP_DEST (OceanBase 3.x names).
-- Set copies move SCHEDULE -> BACKUP -> CLEAN -> FINISH, piece copies SCHEDULE -> DOING ->
-- FINISH; either may end in CANCEL. Ended jobs show only in the _HISTORY views.

CREATE VIEW oceanbase.cdb_ob_backup_backupset_job AS
SELECT job_id, tenant_id, incarnation, backup_set_id, copy_type AS type,
       backup_tenant_name AS tenant_name, status, backup_dest, max_backup_times,
       result, comment
FROM backstop.job
WHERE job_kind = 'BACKUP_BACKUPSET' AND status IN (${COPY_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_backupset_job_history AS
SELECT job_id, tenant_id, incarnation, backup_set_id, copy_type AS type,
       backup_tenant_name AS tenant_name, status, backup_dest, max_backup_times,
       result, comment
FROM backstop.job
WHERE job_kind = 'BACKUP_BACKUPSET' AND status IN (${COPY_ENDED});

CREATE VIEW oceanbase.cdb_ob_backup_backupset_task AS
SELECT t.incarnation, t.tenant_id, t.job_id, t.backup_set_id, t.copy_id,
       s.backup_type, s.prev_full_backup_set_id, s.prev_inc_backup_set_id,
       t.input_bytes, t.output_bytes, t.file_count, t.finish_file_count,
       t.start_ts AS start_time, t.end_ts AS end_time, t.status, t.result, t.comment
FROM backstop.task t
JOIN backstop.job j ON t.job_id = j.job_id
LEFT JOIN backstop.backup_set s ON s.backup_set_id = t.backup_set_id AND s.copy_id = 0
WHERE j.job_kind = 'BACKUP_BACKUPSET' AND t.status IN (${COPY_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_backupset_task_history AS
SELECT t.incarnation, t.tenant_id, t.job_id, t.backup_set_id, t.copy_id,
       s.backup_type, s.prev_full_backup_set_id, s.prev_inc_backup_set_id,
       t.input_bytes, t.output_bytes, t.file_count, t.finish_file_count,
       t.start_ts AS start_time, t.end_ts AS end_time, t.status, t.result, t.comment
FROM backstop.task t
JOIN backstop.job j ON t.job_id = j.job_id
LEFT JOIN backstop.backup_set s ON s.backup_set_id = t.backup_set_id AND s.copy_id = 0
WHERE j.job_kind = 'BACKUP_BACKUPSET' AND t.status IN (${COPY_ENDED});

-- TYPE: 0 copies frozen pieces only, 1 also the active piece.
CREATE VIEW oceanbase.cdb_ob_backup_backuppiece_job AS
SELECT job_id, tenant_id, incarnation, piece_id AS backup_piece_id, max_backup_times,
       result, status, backup_dest, comment, CAST(copy_type AS BIGINT) AS type
FROM backstop.job
WHERE job_kind = 'BACKUP_BACKUPPIECE' AND status IN (${COPY_LIVE});

CREATE VIEW oceanbase.cdb_ob_backup_backuppiece_job_history AS
SELECT job_id, tenant_id, incarnation, piece_id AS backup_piece_id, max_backup_times,
       result, status, backup_dest, comment, CAST(copy_type AS BIGINT) AS type
FROM backstop.job
WHERE job_kind = 'BACKUP_BACKUPPIECE' AND status IN (${COPY_ENDED});

-- Continuous copy of archive log (START/STOP BACKUP ARCHIVELOG): DOING <-> PAUSED, STOP.
CREATE VIEW oceanbase.cdb_ob_backup_backup_archivelog_summary AS
SELECT incarnation, log_archive_round, copy_id, tenant_id, status,
       start_piece_id, backup_piece_id, min_first_time, max_next_time,
       input_bytes, output_bytes,
       CASE WHEN output_bytes > 0
            THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
           AS compression_ratio,
       backstop_display_bytes(input_bytes) AS input_bytes_display,
       backstop_display_bytes(output_bytes) AS output_bytes_display
FROM backstop.backup_backup_archivelog;

CREATE VIEW oceanbase.cdb_ob_backup_backup_archivelog AS
SELECT s.*
FROM oceanbase.cdb_ob_backup_backup_archivelog_summary s
JOIN (SELECT tenant_id AS t, copy_id AS c, max(log_archive_round) AS r
      FROM backstop.backup_backup_archivelog GROUP BY tenant_id, copy_id) latest
  ON s.tenant_id = latest.t AND s.copy_id = latest.c AND s.log_archive_round = latest.r;
