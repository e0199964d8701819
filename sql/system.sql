-- Tenants, parameters, destinations: what the DBA configured.
-- Every CDB_OB_* view here gets a DBA_OB_* twin for the session's tenant (see src/views/mod.rs).

CREATE VIEW oceanbase.dba_ob_tenants AS
SELECT tenant_id, tenant_name, kind, source, log_source, log_mode, status, create_time,
       pgdata, pg_version, system_identifier, archive_mode, data_checksums
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
       CASE name WHEN 'data_backup_dest' THEN 'DATA'
                 WHEN 'log_archive_dest' THEN 'LOG'
                 ELSE 'BACKUP_BACKUP' END AS dest_type,
       value AS path,
       update_time
FROM backstop.parameter
WHERE name IN ('data_backup_dest', 'log_archive_dest', 'backup_backup_dest');
