//! The catalog's base tables, declared once.
//!
//! Each [`TableDef`] yields both the SQLite DDL of the durable store and the Arrow schema under
//! which `views` exposes the table to DataFusion as `backstop.<name>`. The `CDB_`/`DBA_` views in
//! `sql/*.sql` are written over these tables only. Columns marked [`ColumnType::Secret`] are kept
//! in SQLite but never reach DataFusion, so no view can show them.

/// How a column is stored in SQLite and typed in Arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// SQLite INTEGER, Arrow Int64.
    Int,
    /// SQLite REAL, Arrow Float64.
    Real,
    /// SQLite TEXT, Arrow Utf8.
    Text,
    /// SQLite INTEGER microseconds since the Unix epoch, UTC; Arrow Timestamp(µs).
    Time,
    /// Stored, never exposed to queries.
    Secret,
}

#[derive(Debug)]
pub struct ColumnDef {
    pub name: &'static str,
    pub ty: ColumnType,
}

impl ColumnDef {
    /// The column's SQLite definition: `name TYPE`.
    pub fn sql(&self) -> String {
        let ty = match self.ty {
            ColumnType::Int | ColumnType::Time => "INTEGER",
            ColumnType::Real => "REAL",
            ColumnType::Text | ColumnType::Secret => "TEXT",
        };
        format!("{} {}", self.name, ty)
    }
}

#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub columns: &'static [ColumnDef],
    /// Extra DDL clauses (primary key, uniqueness) appended inside `CREATE TABLE (...)`.
    pub constraints: &'static str,
    /// Whether queries may read it (users' password verifiers may not).
    pub queryable: bool,
}

impl TableDef {
    pub fn create_sql(&self) -> String {
        let mut parts: Vec<String> = self.columns.iter().map(ColumnDef::sql).collect();
        if !self.constraints.is_empty() {
            parts.push(self.constraints.to_string());
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {} ({})",
            self.name,
            parts.join(", ")
        )
    }

    pub fn visible_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.ty != ColumnType::Secret)
    }

    /// The columns of the primary key, in key order, as named in `constraints`.
    pub fn primary_key(&self) -> Vec<&'static str> {
        let Some(rest) = self.constraints.split("PRIMARY KEY").nth(1) else {
            return vec![];
        };
        let inside = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|r| r.split(')').next())
            .unwrap_or("");
        inside
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect()
    }
}

macro_rules! cols {
    ($($name:ident : $ty:ident),* $(,)?) => {
        &[$(ColumnDef { name: stringify!($name), ty: ColumnType::$ty }),*]
    };
}

/// Every base table of the catalog.
pub const TABLES: &[TableDef] = &[
    TableDef {
        name: "tenant",
        // `source` is shown with its secrets masked; `raw_source` is what the server connects
        // with, never shown.
        columns: cols!(tenant_id: Int, tenant_name: Text, kind: Text, source: Text,
            log_source: Text, pgdata: Text, log_mode: Text, status: Text, create_time: Time,
            drop_time: Time, raw_source: Secret, pg_version: Text, system_identifier: Text,
            archive_mode: Text, data_checksums: Text),
        constraints: "PRIMARY KEY (tenant_id)",
        queryable: true,
    },
    // Parameters and destinations, system-wide (tenant_id 1) or per tenant. `value` is what views
    // show (secrets masked); `raw_value` is what the executor uses.
    TableDef {
        name: "parameter",
        columns: cols!(tenant_id: Int, name: Text, value: Text, raw_value: Secret,
            update_time: Time),
        constraints: "PRIMARY KEY (tenant_id, name)",
        queryable: true,
    },
    // The attributes of LOG_ARCHIVE_DEST (and its state), one row each, as CDB_OB_ARCHIVE_DEST.
    TableDef {
        name: "archive_dest",
        columns: cols!(tenant_id: Int, dest_no: Int, name: Text, value: Text),
        constraints: "PRIMARY KEY (tenant_id, dest_no, name)",
        queryable: true,
    },
    TableDef {
        name: "user_account",
        columns: cols!(user_name: Text, role: Text, salt: Secret, salted_password: Secret,
            iterations: Int, create_time: Time),
        constraints: "PRIMARY KEY (user_name)",
        queryable: false,
    },
    // The master key of each encrypted destination this server writes or has unlocked, so that
    // backups (and resumed restores) go on after a restart without a passphrase typed again.
    TableDef {
        name: "destination_key",
        columns: cols!(root: Text, key_id: Text, cipher: Text, master_key: Secret,
            create_time: Time),
        constraints: "PRIMARY KEY (root)",
        queryable: false,
    },
    // One row per job of every kind: BACKUP, BACKUP_BACKUPSET, BACKUP_BACKUPPIECE, VALIDATE,
    // RESTORE, DELETE. Kind-specific columns are NULL for the other kinds.
    TableDef {
        name: "job",
        columns: cols!(job_id: Int, job_kind: Text, tenant_id: Int, incarnation: Int,
            backup_set_id: Int, initiator_tenant_id: Int, initiator_job_id: Int,
            executor_tenant_id: Text, plus_archivelog: Int, backup_type: Text, job_level: Text,
            encryption_mode: Text, start_ts: Time, end_ts: Time, status: Text, result: Int,
            error_code: Text, comment: Text, description: Text, path: Text, stop_mode: Text, restart_pass: Int,
            plan_name: Text, chain_id: Int, backup_dest: Text, max_backup_times: Int,
            copy_type: Text, piece_id: Int, validate_level: Text, restore_tenant_name: Text,
            restore_tenant_id: Int, backup_tenant_name: Text, backup_tenant_id: Int,
            restore_target: Text, restore_option: Text, restore_until: Text, set_list: Text,
            piece_list: Text, job_type: Text, parameter: Text, total_bytes: Int, finish_bytes: Int, input_bytes: Int,
            output_bytes: Int, file_count: Int, finish_file_count: Int),
        constraints: "PRIMARY KEY (job_id)",
        queryable: true,
    },
    TableDef {
        name: "task",
        columns: cols!(task_id: Int, job_id: Int, tenant_id: Int, incarnation: Int,
            backup_set_id: Int, piece_id: Int, copy_id: Int, seq: Int, start_ts: Time,
            end_ts: Time, status: Text, input_bytes: Int, output_bytes: Int,
            output_rate_bytes: Real, file_count: Int, finish_file_count: Int, total_bytes: Int,
            data_progress: Real, result: Int, comment: Text, path: Text, restart_pass: Int,
            context_id: Text, checkpoint_bytes: Int, checkpoint_files: Int,
            checkpoint_time: Time, bytes_read: Int),
        constraints: "PRIMARY KEY (task_id)",
        queryable: true,
    },
    TableDef {
        name: "backup_set",
        columns: cols!(tenant_id: Int, backup_set_id: Int, copy_id: Int, dest_id: Int,
            incarnation: Int, job_id: Int, backup_type: Text, prev_full_backup_set_id: Int,
            prev_inc_backup_set_id: Int, start_ts: Time, end_ts: Time, status: Text,
            file_status: Text, plus_archivelog: Int, input_bytes: Int, output_bytes: Int,
            file_count: Int, encryption_mode: Text, chain_id: Int, result: Int, comment: Text,
            path: Text, cleanup_pending: Int),
        constraints: "PRIMARY KEY (backup_set_id, copy_id)",
        queryable: true,
    },
    // One row per archive round of a tenant. `cluster_round_id` ties together the rounds one
    // `ALTER SYSTEM ARCHIVELOG` for all tenants started (the views' TENANT_ID = 1 summary).
    TableDef {
        name: "archive_round",
        columns: cols!(tenant_id: Int, dest_id: Int, round_id: Int, incarnation: Int,
            status: Text, start_scn: Int, checkpoint_scn: Int, base_piece_id: Int,
            used_piece_id: Int, piece_switch_interval: Int, input_bytes: Int, output_bytes: Int,
            comment: Text, path: Text, start_ts: Time, end_ts: Time, cluster_round_id: Int),
        constraints: "PRIMARY KEY (tenant_id, dest_id, round_id)",
        queryable: true,
    },
    // One row per archived log segment: where it is and what it covers, for archive-get,
    // restore UNTIL TIME and piece copies.
    TableDef {
        name: "archive_segment",
        columns: cols!(tenant_id: Int, name: Text, round_id: Int, piece_id: Int, size: Int,
            stored_size: Int, close_scn: Int, hash: Text, archived_ts: Time),
        constraints: "PRIMARY KEY (tenant_id, name)",
        queryable: true,
    },
    TableDef {
        name: "archive_piece",
        columns: cols!(tenant_id: Int, dest_id: Int, round_id: Int, piece_id: Int,
            copy_id: Int, incarnation: Int, status: Text, start_scn: Int, checkpoint_scn: Int,
            end_scn: Int, input_bytes: Int, output_bytes: Int, file_count: Int,
            file_status: Text, path: Text),
        constraints: "PRIMARY KEY (piece_id, copy_id)",
        queryable: true,
    },
    // Continuous copy of archive log to BACKUP_BACKUP_DEST (START/STOP BACKUP ARCHIVELOG).
    TableDef {
        name: "backup_backup_archivelog",
        columns: cols!(tenant_id: Int, incarnation: Int, log_archive_round: Int, copy_id: Int,
            status: Text, start_piece_id: Int, backup_piece_id: Int, min_first_time: Time,
            max_next_time: Time, input_bytes: Int, output_bytes: Int, path: Text),
        constraints: "PRIMARY KEY (tenant_id, log_archive_round, copy_id)",
        queryable: true,
    },
    TableDef {
        name: "restartable_context",
        columns: cols!(context_id: Text, job_id: Int, task_id: Int, tenant_id: Int, path: Text,
            snapshot_name: Text, is_cleanup_pending: Int, is_restartable: Int, is_busy: Int,
            restart_pass: Int, bytes_done: Int, files_done: Int, checkpoint_time: Time,
            last_updated: Time, reason: Text, attempts: Int, next_restart_time: Time),
        constraints: "PRIMARY KEY (context_id)",
        queryable: true,
    },
    // Contexts dropped by DELETE BACKUP CONTEXT whose partial data the collector has not
    // reclaimed yet (IS_CLEANUP_PENDING in the contexts view).
    TableDef {
        name: "released_context",
        columns: cols!(context_id: Text, job_id: Int, task_id: Int, tenant_id: Int, path: Text,
            snapshot_name: Text, restart_pass: Int, bytes_done: Int, files_done: Int,
            checkpoint_time: Time, last_updated: Time, reason: Text),
        constraints: "PRIMARY KEY (context_id)",
        queryable: true,
    },
    TableDef {
        name: "backup_policy",
        columns: cols!(policy_name: Text, schedule: Text, timezone: Text, create_time: Time),
        constraints: "PRIMARY KEY (policy_name)",
        queryable: true,
    },
    TableDef {
        name: "backup_plan",
        columns: cols!(plan_name: Text, status: Text, tenants: Text, policies: Text,
            chain_length: Int, retention: Text, execution_count: Int, notify: Secret,
            create_time: Time, next_run_time: Time, notify_shown: Text),
        constraints: "PRIMARY KEY (plan_name)",
        queryable: true,
    },
    TableDef {
        name: "backup_chain",
        columns: cols!(chain_id: Int, tenant_id: Int, plan_name: Text, kind: Text, points: Int,
            first_set_id: Int, last_set_id: Int, status: Text, create_time: Time),
        constraints: "PRIMARY KEY (chain_id)",
        queryable: true,
    },
    TableDef {
        name: "plan_run",
        columns: cols!(run_id: Int, plan_name: Text, policy_name: Text, job_id: Int,
            start_ts: Time, end_ts: Time, status: Text, comment: Text, jobs: Text,
            scheduled_ts: Time),
        constraints: "PRIMARY KEY (run_id)",
        queryable: true,
    },
    // Deliveries of plan and job events: to a LISTEN channel (done at once) or a URL (POSTed,
    // retried with backoff).
    TableDef {
        name: "notification",
        columns: cols!(notification_id: Int, target: Text, event: Text, payload: Text,
            status: Text, attempts: Int, outcome: Text, create_time: Time, update_time: Time),
        constraints: "PRIMARY KEY (notification_id)",
        queryable: true,
    },
    TableDef {
        name: "delete_policy",
        columns: cols!(tenant_id: Int, policy_name: Text, recovery_window: Text,
            create_time: Time),
        constraints: "PRIMARY KEY (tenant_id, policy_name)",
        queryable: true,
    },
    // Views created by users with CREATE VIEW, replayed at start.
    TableDef {
        name: "user_view",
        columns: cols!(schema_name: Text, view_name: Text, definition: Text, create_time: Time),
        constraints: "PRIMARY KEY (schema_name, view_name)",
        queryable: true,
    },
    // Monotonic id generators: job ids grow with time, set and piece ids never repeat.
    TableDef {
        name: "sequence",
        columns: cols!(name: Text, next_value: Int),
        constraints: "PRIMARY KEY (name)",
        queryable: false,
    },
    TableDef {
        name: "meta",
        columns: cols!(key: Text, value: Text),
        constraints: "PRIMARY KEY (key)",
        queryable: false,
    },
    // Every statement that changes anything: who, from where, when, what (secrets masked) and
    // how it ended. CDB_OB_AUDIT reads it.
    TableDef {
        name: "audit",
        columns: cols!(audit_id: Int, time: Time, user_name: Text, client_address: Text,
            statement_type: Text, statement: Text, result: Text, error_code: Text,
            error_message: Text),
        constraints: "PRIMARY KEY (audit_id)",
        queryable: true,
    },
];

pub fn table(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}
