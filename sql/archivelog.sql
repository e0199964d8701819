-- Archive log rounds and pieces. SCNs are nanoseconds since the Unix epoch, as in OceanBase;
-- each has a _DISPLAY twin as a timestamp.
-- OceanBase's documented columns come first, in its order; docs/oceanbase-views.md says what the
-- constant ones are. DEST_NO is 0: backstop has one archive destination, LOG_ARCHIVE_DEST, which
-- OceanBase numbers 0. COMPATIBLE is 1, backstop's repository format version; COMPRESSION is
-- zstd, which every archived segment is written with when it makes it smaller.

-- Every round of every tenant; and for each cluster round (an ARCHIVELOG for all tenants) a row
-- with TENANT_ID = 1 summarising the rounds it started, as OceanBase 3.x shows the system: the
-- most urgent state among the rounds still on, the oldest checkpoint, the summed bytes.
-- DELETED_* sum the pieces of the round (copy 0) that DELETE BACKUP removed.
CREATE VIEW oceanbase.cdb_ob_archivelog_summary AS
-- Each round with the bytes of its deleted pieces, read once for both kinds of row.
WITH per_round AS (
    SELECT r.*, COALESCE(d.deleted_input_bytes, 0) AS deleted_input_bytes,
           COALESCE(d.deleted_output_bytes, 0) AS deleted_output_bytes
    FROM backstop.archive_round r
    LEFT JOIN (SELECT tenant_id, dest_id, round_id, sum(input_bytes) AS deleted_input_bytes,
                      sum(output_bytes) AS deleted_output_bytes
               FROM backstop.archive_piece
               WHERE copy_id = 0 AND file_status = 'DELETED'
               GROUP BY tenant_id, dest_id, round_id) d
      ON d.tenant_id = r.tenant_id AND d.dest_id = r.dest_id AND d.round_id = r.round_id
)
SELECT tenant_id, dest_id, round_id, incarnation, 0 AS dest_no, status,
       start_scn, to_timestamp_micros(start_scn / 1000) AS start_scn_display,
       checkpoint_scn, to_timestamp_micros(checkpoint_scn / 1000) AS checkpoint_scn_display,
       1 AS compatible, base_piece_id, used_piece_id, piece_switch_interval,
       0 AS unit_size, 'zstd' AS compression,
       input_bytes, backstop_display_bytes(input_bytes) AS input_bytes_display,
       output_bytes, backstop_display_bytes(output_bytes) AS output_bytes_display,
       CASE WHEN output_bytes > 0
            THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
           AS compression_ratio,
       deleted_input_bytes,
       backstop_display_bytes(deleted_input_bytes) AS deleted_input_bytes_display,
       deleted_output_bytes,
       backstop_display_bytes(deleted_output_bytes) AS deleted_output_bytes_display,
       path, comment
FROM (
    SELECT r.tenant_id, r.dest_id, r.round_id, r.incarnation, r.status, r.start_scn,
           r.checkpoint_scn, r.base_piece_id, r.used_piece_id, r.piece_switch_interval,
           r.input_bytes, r.output_bytes, r.deleted_input_bytes, r.deleted_output_bytes,
           r.comment, r.path
    FROM per_round r
    UNION ALL
    SELECT 1, min(r.dest_id), r.cluster_round_id, 1,
           CASE
               WHEN max(CASE WHEN r.status <> 'STOP' THEN 1 ELSE 0 END) = 0 THEN 'STOP'
               WHEN max(CASE WHEN r.status = 'STOPPING' THEN 1 ELSE 0 END) = 1 THEN 'STOPPING'
               WHEN max(CASE WHEN r.status = 'INTERRUPTED' THEN 1 ELSE 0 END) = 1
                   THEN 'INTERRUPTED'
               WHEN max(CASE WHEN r.status = 'SUSPENDING' THEN 1 ELSE 0 END) = 1
                   THEN 'SUSPENDING'
               WHEN max(CASE WHEN r.status IN ('PREPARE', 'BEGINNING') THEN 1 ELSE 0 END) = 1
                   THEN 'BEGINNING'
               WHEN min(CASE WHEN r.status IN ('SUSPEND', 'STOP') THEN 1 ELSE 0 END) = 1
                   THEN 'SUSPEND'
               ELSE 'DOING'
           END,
           min(r.start_scn),
           coalesce(min(CASE WHEN r.status <> 'STOP' THEN r.checkpoint_scn END),
                    max(r.checkpoint_scn)),
           min(r.base_piece_id), max(r.used_piece_id), max(r.piece_switch_interval),
           sum(r.input_bytes), sum(r.output_bytes),
           sum(r.deleted_input_bytes), sum(r.deleted_output_bytes),
           coalesce(string_agg(CASE WHEN r.comment <> ''
                                    THEN 'tenant ' || CAST(r.tenant_id AS VARCHAR) || ': '
                                         || r.comment
                               END, '; '), ''),
           min(r.path)
    FROM per_round r
    WHERE r.cluster_round_id IS NOT NULL
    GROUP BY r.cluster_round_id
) rounds;

-- The newest round of each tenant and destination. OceanBase documents COMMENT before PATH
-- here, the reverse of CDB_OB_ARCHIVELOG_SUMMARY.
CREATE VIEW oceanbase.cdb_ob_archivelog AS
SELECT s.tenant_id, s.dest_id, s.round_id, s.incarnation, s.dest_no, s.status,
       s.start_scn, s.start_scn_display, s.checkpoint_scn, s.checkpoint_scn_display,
       s.compatible, s.base_piece_id, s.used_piece_id, s.piece_switch_interval,
       s.unit_size, s.compression, s.input_bytes, s.input_bytes_display,
       s.output_bytes, s.output_bytes_display, s.compression_ratio,
       s.deleted_input_bytes, s.deleted_input_bytes_display,
       s.deleted_output_bytes, s.deleted_output_bytes_display,
       s.comment, s.path
FROM oceanbase.cdb_ob_archivelog_summary s
JOIN (SELECT tenant_id AS t, dest_id AS d, max(round_id) AS r
      FROM oceanbase.cdb_ob_archivelog_summary GROUP BY tenant_id, dest_id) latest
  ON s.tenant_id = latest.t AND s.dest_id = latest.d AND s.round_id = latest.r;

-- CREATE_TIMESTAMP is the piece's start in microseconds since the epoch (a piece is created
-- where it starts); MAX_SCN is its checkpoint, the newest log it holds.
CREATE VIEW oceanbase.cdb_ob_archivelog_piece_files AS
SELECT tenant_id, dest_id, round_id, piece_id, incarnation, 0 AS dest_no,
       start_scn / 1000 AS create_timestamp, status,
       start_scn, to_timestamp_micros(start_scn / 1000) AS start_scn_display,
       checkpoint_scn, to_timestamp_micros(checkpoint_scn / 1000) AS checkpoint_scn_display,
       checkpoint_scn AS max_scn, end_scn,
       1 AS compatible, 0 AS unit_size, 'zstd' AS compression,
       input_bytes, backstop_display_bytes(input_bytes) AS input_bytes_display,
       output_bytes, backstop_display_bytes(output_bytes) AS output_bytes_display,
       CASE WHEN output_bytes > 0
            THEN CAST(input_bytes AS DOUBLE) / CAST(output_bytes AS DOUBLE) ELSE 0.0 END
           AS compression_ratio,
       file_status, path,
       to_timestamp_micros(end_scn / 1000) AS end_scn_display, file_count
FROM backstop.archive_piece
WHERE copy_id = 0;

-- 3.x names. START_PIECE_ID is the round's first piece, BACKUP_PIECE_ID the one in use.
CREATE VIEW oceanbase.cdb_ob_backup_archivelog AS
SELECT incarnation, round_id AS log_archive_round, tenant_id, status,
       base_piece_id AS start_piece_id, used_piece_id AS backup_piece_id,
       to_timestamp_micros(start_scn / 1000) AS min_first_time,
       to_timestamp_micros(checkpoint_scn / 1000) AS max_next_time,
       input_bytes, output_bytes, compression_ratio,
       input_bytes_display, output_bytes_display
FROM oceanbase.cdb_ob_archivelog_summary;

-- CREATE_DATE is the day the piece starts, as OceanBase 3.x writes it: YYYYMMDD.
CREATE VIEW oceanbase.cdb_ob_backup_piece_files AS
SELECT p.incarnation, p.tenant_id, p.round_id, p.piece_id AS backup_piece_id, p.copy_id,
       CAST(to_char(to_timestamp_micros(p.start_scn / 1000), '%Y%m%d') AS BIGINT)
           AS create_date,
       to_timestamp_micros(p.start_scn / 1000) AS start_ts,
       to_timestamp_micros(p.checkpoint_scn / 1000) AS checkpoint_ts,
       to_timestamp_micros(p.end_scn / 1000) AS max_ts,
       p.status, p.file_status, 1 AS compatible, r.base_piece_id AS start_piece_id,
       p.path AS backup_dest, p.input_bytes, p.output_bytes, p.file_count
FROM backstop.archive_piece p
LEFT JOIN backstop.archive_round r
  ON r.tenant_id = p.tenant_id AND r.dest_id = p.dest_id AND r.round_id = p.round_id;
