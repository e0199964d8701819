-- Archive log rounds and pieces. SCNs are nanoseconds since the Unix epoch, as in OceanBase;
-- each has a _DISPLAY twin as a timestamp.

-- Every round of every tenant; and for each cluster round (an ARCHIVELOG for all tenants) a row
-- with TENANT_ID = 1 summarising the rounds it started, as OceanBase 3.x shows the system: the
-- most urgent state among the rounds still on, the oldest checkpoint, the summed bytes.
CREATE VIEW oceanbase.cdb_ob_archivelog_summary AS
SELECT tenant_id, dest_id, round_id, incarnation, status,
       start_scn, to_timestamp_micros(start_scn / 1000) AS start_scn_display,
       checkpoint_scn, to_timestamp_micros(checkpoint_scn / 1000) AS checkpoint_scn_display,
       base_piece_id, used_piece_id, piece_switch_interval,
       input_bytes, backstop_display_bytes(input_bytes) AS input_bytes_display,
       output_bytes, backstop_display_bytes(output_bytes) AS output_bytes_display,
       CASE WHEN output_bytes > 0
            THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
           AS compression_ratio,
       comment, path
FROM (
    SELECT tenant_id, dest_id, round_id, incarnation, status, start_scn, checkpoint_scn,
           base_piece_id, used_piece_id, piece_switch_interval, input_bytes, output_bytes,
           comment, path
    FROM backstop.archive_round
    UNION ALL
    SELECT 1, min(dest_id), cluster_round_id, 1,
           CASE
               WHEN max(CASE WHEN status <> 'STOP' THEN 1 ELSE 0 END) = 0 THEN 'STOP'
               WHEN max(CASE WHEN status = 'STOPPING' THEN 1 ELSE 0 END) = 1 THEN 'STOPPING'
               WHEN max(CASE WHEN status = 'INTERRUPTED' THEN 1 ELSE 0 END) = 1 THEN 'INTERRUPTED'
               WHEN max(CASE WHEN status = 'SUSPENDING' THEN 1 ELSE 0 END) = 1 THEN 'SUSPENDING'
               WHEN max(CASE WHEN status IN ('PREPARE', 'BEGINNING') THEN 1 ELSE 0 END) = 1
                   THEN 'BEGINNING'
               WHEN min(CASE WHEN status IN ('SUSPEND', 'STOP') THEN 1 ELSE 0 END) = 1
                   THEN 'SUSPEND'
               ELSE 'DOING'
           END,
           min(start_scn),
           coalesce(min(CASE WHEN status <> 'STOP' THEN checkpoint_scn END), max(checkpoint_scn)),
           min(base_piece_id), max(used_piece_id), max(piece_switch_interval),
           sum(input_bytes), sum(output_bytes),
           coalesce(string_agg(CASE WHEN comment <> ''
                                    THEN 'tenant ' || CAST(tenant_id AS VARCHAR) || ': ' || comment
                               END, '; '), ''),
           min(path)
    FROM backstop.archive_round
    WHERE cluster_round_id IS NOT NULL
    GROUP BY cluster_round_id
) rounds;

-- The newest round of each tenant and destination.
CREATE VIEW oceanbase.cdb_ob_archivelog AS
SELECT s.*
FROM oceanbase.cdb_ob_archivelog_summary s
JOIN (SELECT tenant_id AS t, dest_id AS d, max(round_id) AS r
      FROM oceanbase.cdb_ob_archivelog_summary GROUP BY tenant_id, dest_id) latest
  ON s.tenant_id = latest.t AND s.dest_id = latest.d AND s.round_id = latest.r;

CREATE VIEW oceanbase.cdb_ob_archivelog_piece_files AS
SELECT tenant_id, dest_id, round_id, piece_id, incarnation, status,
       start_scn, to_timestamp_micros(start_scn / 1000) AS start_scn_display,
       checkpoint_scn, to_timestamp_micros(checkpoint_scn / 1000) AS checkpoint_scn_display,
       end_scn, to_timestamp_micros(end_scn / 1000) AS end_scn_display,
       input_bytes, backstop_display_bytes(input_bytes) AS input_bytes_display,
       output_bytes, backstop_display_bytes(output_bytes) AS output_bytes_display,
       file_count, file_status, path
FROM backstop.archive_piece
WHERE copy_id = 0;

-- 3.x names.
CREATE VIEW oceanbase.cdb_ob_backup_archivelog AS
SELECT incarnation, tenant_id, round_id AS log_archive_round,
       to_timestamp_micros(start_scn / 1000) AS min_first_time,
       to_timestamp_micros(checkpoint_scn / 1000) AS max_next_time,
       input_bytes, output_bytes,
       CASE WHEN output_bytes > 0
            THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
           AS compression_ratio,
       backstop_display_bytes(input_bytes) AS input_bytes_display,
       backstop_display_bytes(output_bytes) AS output_bytes_display,
       status
FROM oceanbase.cdb_ob_archivelog_summary;

CREATE VIEW oceanbase.cdb_ob_backup_piece_files AS
SELECT incarnation, tenant_id, round_id, piece_id AS backup_piece_id, copy_id,
       to_timestamp_micros(start_scn / 1000) AS start_ts,
       to_timestamp_micros(checkpoint_scn / 1000) AS checkpoint_ts,
       to_timestamp_micros(end_scn / 1000) AS max_ts,
       status, file_status, path AS backup_dest,
       input_bytes, output_bytes, file_count
FROM backstop.archive_piece;
