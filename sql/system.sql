-- Tenants, parameters, destinations: what the DBA configured.
-- Every CDB_OB_* view here gets a DBA_OB_* twin for the session's tenant (see src/views/mod.rs).
-- Each view documented by OceanBase has its documented columns first, in the documented order,
-- then backstop's own; docs/oceanbase-views.md lists the constants and why.

CREATE VIEW oceanbase.dba_ob_tenants AS
SELECT tenant_id, tenant_name,
       CASE WHEN tenant_id = 1 THEN 'SYS' ELSE 'USER' END AS tenant_type,
       create_time,
       arrow_cast(NULL, 'Timestamp(Microsecond, None)') AS modify_time,
       'RANDOM' AS primary_zone, '' AS locality, arrow_cast(NULL, 'Utf8') AS previous_locality,
       'MYSQL' AS compatibility_mode, status, 'NO' AS in_recyclebin, 'NO' AS locked,
       'PRIMARY' AS tenant_role, 'NORMAL' AS switchover_status, 0 AS switchover_epoch,
       CAST(NULL AS BIGINT) AS sync_scn, CAST(NULL AS BIGINT) AS replayable_scn,
       CAST(NULL AS BIGINT) AS readable_scn, CAST(NULL AS BIGINT) AS recovery_until_scn,
       log_mode, 'DISABLED' AS arbitration_service_status, 1 AS unit_num,
       arrow_cast(NULL, 'Utf8') AS compatible, 1 AS max_ls_id,
       'NORMAL' AS restore_data_mode,
       kind, source, log_source, pgdata, pg_version, system_identifier, archive_mode,
       data_checksums
FROM backstop.tenant
WHERE status = 'NORMAL';

CREATE VIEW oceanbase.cdb_ob_backup_parameter AS
SELECT tenant_id, name, value
FROM backstop.parameter;

CREATE VIEW oceanbase.cdb_ob_archive_dest AS
SELECT tenant_id, dest_no, name, value
FROM backstop.archive_dest;

-- One row per destination in use: data, archive log, backup-backup.
CREATE VIEW oceanbase.cdb_ob_backup_storage_info AS
SELECT tenant_id,
       value AS path,
       '' AS endpoint, 1 AS dest_id,
       CASE name WHEN 'data_backup_dest' THEN 'DATA'
                 WHEN 'log_archive_dest' THEN 'LOG'
                 ELSE 'BACKUP_BACKUP' END AS dest_type,
       '' AS authorization, '' AS extension, '' AS check_file_name,
       arrow_cast(NULL, 'Timestamp(Microsecond, None)') AS last_check_timestamp,
       update_time
FROM backstop.parameter
WHERE name IN ('data_backup_dest', 'log_archive_dest', 'backup_backup_dest');

-- Every parameter as OceanBase 4.x shows its own: one row at cluster scope (TENANT_ID NULL, the
-- system's value) and one per tenant (the value in force for it). Backstop's own columns after
-- the documented ones: SOURCE (TENANT, CLUSTER or DEFAULT: where the value comes from) and
-- TENANT_NAME. V$OB_PARAMETERS is the same: backstop is one server.
CREATE VIEW oceanbase."gv$ob_parameters" AS
SELECT svr_ip, svr_port, zone, scope, tenant_id, name, data_type, value, info, section,
       edit_level, default_value, isdefault, source, tenant_name
FROM backstop.parameter_setting;

CREATE VIEW oceanbase."v$ob_parameters" AS
SELECT * FROM oceanbase."gv$ob_parameters";

-- backstop's own: every statement that changed anything (or tried to), with who, from where,
-- when and how it ended; passwords replaced by ********, URI credentials masked.
CREATE VIEW oceanbase.cdb_ob_audit AS
SELECT audit_id, time, user_name, client_address, statement_type, statement, result,
       error_code, error_message
FROM backstop.audit;
