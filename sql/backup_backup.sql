-- Backup-backup: copies of sets and pieces to BACKUP_BACKUP_DEST (OceanBase 3.x names).
-- Set copies move SCHEDULE -> BACKUP -> CLEAN -> FINISH, piece copies SCHEDULE -> DOING ->
-- FINISH; either may end in CANCEL. Ended jobs show only in the _HISTORY views.
-- OceanBase's documented columns come first, in its order, then backstop's own; the constants
-- are explained in docs/oceanbase-views.md. BS_KEY is the set id; a copy's unit is the file,
-- so macro-block counts are file counts; partition groups and partitions do not exist (0).

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
SELECT t.incarnation, t.backup_set_id AS bs_key, t.copy_id, s.backup_type, t.tenant_id,
       0 AS total_pg_count, 0 AS finish_pg_count, 0 AS total_partition_count,
       t.file_count AS total_macro_block_count, 0 AS finish_partition_count,
       t.finish_file_count AS finish_macro_block_count,
       t.input_bytes, t.output_bytes,
       t.start_ts AS start_time, t.end_ts AS completion_time, t.status,
       t.job_id, t.backup_set_id, s.prev_full_backup_set_id, s.prev_inc_backup_set_id,
       t.file_count, t.finish_file_count, t.end_ts AS end_time, t.result, t.comment
FROM backstop.task t
JOIN backstop.job j ON t.job_id = j.job_id
LEFT JOIN backstop.backup_set s ON s.backup_set_id = t.backup_set_id AND s.copy_id = 0
WHERE j.job_kind = 'BACKUP_BACKUPSET' AND t.status IN (${COPY_LIVE});

-- SRC_/DST_DEVICE_TYPE are the schemes of the original set's and the copy's destination URIs;
-- KEEP is NO (a copy expires with its retention); COMPRESSED and COMPRESSION_RATIO are the
-- original set's (a copy stores its data as it is); OUTPUT_RATE_BYTES is bytes written per
-- second.
CREATE VIEW oceanbase.cdb_ob_backup_backupset_task_history AS
SELECT incarnation, tenant_id, bs_key, copy_id, backup_type, encryption_mode,
       start_time, completion_time, elapsed_secondes, 'NO' AS keep, '' AS keep_until,
       CASE WHEN strpos(src_path, '://') > 0 THEN split_part(src_path, '://', 1)
            ELSE 'file' END AS src_device_type,
       CASE WHEN strpos(dst_path, '://') > 0 THEN split_part(dst_path, '://', 1)
            ELSE 'file' END AS dst_device_type,
       compressed, output_bytes, output_rate_bytes, compression_ratio,
       backstop_display_bytes(output_bytes) AS output_bytes_display,
       backstop_display_bytes(CAST(output_rate_bytes AS BIGINT)) || '/S'
           AS output_rate_bytes_display,
       CASE WHEN elapsed_secondes < 36000 THEN '0' ELSE '' END
           || CAST(elapsed_secondes / 3600 AS VARCHAR) || ':'
           || lpad(CAST((elapsed_secondes % 3600) / 60 AS VARCHAR), 2, '0') || ':'
           || lpad(CAST(elapsed_secondes % 60 AS VARCHAR), 2, '0') AS time_taken_display,
       status,
       job_id, backup_set_id, prev_full_backup_set_id, prev_inc_backup_set_id, input_bytes,
       file_count, finish_file_count, end_time, result, comment
FROM (
    SELECT t.incarnation, t.tenant_id, t.backup_set_id AS bs_key, t.copy_id, s.backup_type,
           s.encryption_mode, t.start_ts AS start_time, t.end_ts AS completion_time,
           CAST(date_part('epoch', t.end_ts) - date_part('epoch', t.start_ts) AS BIGINT)
               AS elapsed_secondes,
           s.path AS src_path, COALESCE(j.backup_dest, t.path) AS dst_path,
           CASE WHEN s.output_bytes < s.input_bytes THEN 'YES' ELSE 'NO' END AS compressed,
           CASE WHEN s.output_bytes > 0
                THEN CAST(s.input_bytes AS DOUBLE) / CAST(s.output_bytes AS DOUBLE) ELSE 0.0 END
               AS compression_ratio,
           t.output_bytes,
           CASE WHEN t.end_ts IS NOT NULL
                THEN CAST(t.output_bytes AS DOUBLE)
                     / GREATEST(date_part('epoch', t.end_ts) - date_part('epoch', t.start_ts),
                                0.001)
           END AS output_rate_bytes,
           t.status, t.job_id, t.backup_set_id, s.prev_full_backup_set_id,
           s.prev_inc_backup_set_id, t.input_bytes, t.file_count, t.finish_file_count,
           t.end_ts AS end_time, t.result, t.comment
    FROM backstop.task t
    JOIN backstop.job j ON t.job_id = j.job_id
    LEFT JOIN backstop.backup_set s ON s.backup_set_id = t.backup_set_id AND s.copy_id = 0
    WHERE j.job_kind = 'BACKUP_BACKUPSET' AND t.status IN (${COPY_ENDED})
) c;

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
       min_first_time, max_next_time,
       input_bytes, output_bytes,
       CASE WHEN output_bytes > 0
            THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
           AS compression_ratio,
       backstop_display_bytes(input_bytes) AS input_bytes_display,
       backstop_display_bytes(output_bytes) AS output_bytes_display,
       start_piece_id, backup_piece_id
FROM backstop.backup_backup_archivelog;

CREATE VIEW oceanbase.cdb_ob_backup_backup_archivelog AS
SELECT s.incarnation, s.log_archive_round, s.copy_id, s.tenant_id, s.status,
       s.start_piece_id, s.backup_piece_id, s.min_first_time, s.max_next_time,
       s.input_bytes, s.output_bytes, s.compression_ratio,
       s.input_bytes_display, s.output_bytes_display
FROM oceanbase.cdb_ob_backup_backup_archivelog_summary s
JOIN (SELECT tenant_id AS t, copy_id AS c, max(log_archive_round) AS r
      FROM backstop.backup_backup_archivelog GROUP BY tenant_id, copy_id) latest
  ON s.tenant_id = latest.t AND s.copy_id = latest.c AND s.log_archive_round = latest.r;
