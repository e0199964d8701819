//! Applying ARCHIVELOG, NOARCHIVELOG and the archive-push/-get statements.

use std::sync::Arc;

use datafusion::arrow::array::{BinaryArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use super::{Caller, Control, Outcome};
use crate::error::{SqlError, SqlResult};
use crate::executor::archive::PushOutcome;
use crate::sql::ast::ArchiveStatement;

/// What `PUSH ARCHIVELOG` answers: the segment, what became of it, and why when it was skipped.
pub fn push_schema() -> Schema {
    Schema::new(vec![
        Field::new("segment", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("detail", DataType::Utf8, true),
    ])
}

/// What `GET ARCHIVELOG` without `TO` answers: the segment, its size and its bytes.
pub fn segment_schema() -> Schema {
    Schema::new(vec![
        Field::new("segment", DataType::Utf8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("data", DataType::Binary, false),
    ])
}

fn pushed(name: Option<String>, outcome: PushOutcome) -> SqlResult<Outcome> {
    let detail = match outcome {
        PushOutcome::Skipped => Some(
            "not archived: the round is not DOING and BINDING=OPTIONAL lets the source go on"
                .to_string(),
        ),
        _ => None,
    };
    let batch = RecordBatch::try_new(
        Arc::new(push_schema()),
        vec![
            Arc::new(StringArray::from(vec![name])),
            Arc::new(StringArray::from(vec![Some(outcome.as_str())])),
            Arc::new(StringArray::from(vec![detail])),
        ],
    )
    .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok(Outcome::Rows(batch))
}

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_archive(
        &self,
        caller: &Caller,
        statement: &ArchiveStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            ArchiveStatement::Archivelog { tenants } => {
                let cluster = !matches!(tenants, Some(crate::sql::ast::TenantScope::List(_)));
                let tenants = self.archive_scope(tenants, true)?;
                // An archive destination is encrypted as a data destination is: by the first
                // ARCHIVELOG of a session with SET ENCRYPTION, while it is empty.
                for tenant in &tenants {
                    if let Some(dest) = self.executor.archive_location(tenant)? {
                        super::keys::prepare_for_writing(&self.catalog, &caller.keys, &dest)?;
                    }
                }
                self.executor.start_archivelog(&tenants, cluster)?;
                if wait {
                    self.wait_for_rounds(&tenants, &["DOING", "INTERRUPTED", "SUSPEND"])?;
                }
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            ArchiveStatement::NoArchivelog { tenants } => {
                let tenants = self.archive_scope(tenants, false)?;
                self.executor.stop_archivelog(&tenants)?;
                if wait {
                    self.wait_for_rounds(&tenants, &["STOP"])?;
                }
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
            ArchiveStatement::PushArchivelog { path, tenant } => {
                let tenant = super::tenant::find(&self.catalog, tenant)?;
                let outcome = self
                    .executor
                    .push_segment(&tenant, std::path::Path::new(path))?;
                let name = std::path::Path::new(path)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                pushed(name, outcome)
            }
            ArchiveStatement::ReceiveArchivelog { name, tenant, data } => {
                let tenant = super::tenant::find(&self.catalog, tenant)?;
                let data = data.0.as_ref().ok_or_else(|| {
                    SqlError::invalid_value(
                        "PUSH ARCHIVELOG ... DATA $1 carries the segment's bytes as a bytea \
                         parameter: send it with the extended protocol (backstop archive-push \
                         does)",
                    )
                })?;
                let outcome = self.executor.receive_segment(
                    &tenant,
                    name,
                    data,
                    crate::catalog::now_nanos(),
                )?;
                pushed(Some(name.clone()), outcome)
            }
            ArchiveStatement::SendArchivelog { name, tenant, at } => {
                let data = match at {
                    Some(at) => self.executor.archived_segment_at(tenant, name, at)?,
                    None => {
                        let tenant = super::tenant::find(&self.catalog, tenant)?;
                        self.executor.archived_segment(&tenant, name)?
                    }
                };
                let size = data.len() as i64;
                let batch = RecordBatch::try_new(
                    Arc::new(segment_schema()),
                    vec![
                        Arc::new(StringArray::from(vec![name.as_str()])),
                        Arc::new(Int64Array::from(vec![size])),
                        Arc::new(BinaryArray::from(vec![data.as_slice()])),
                    ],
                )
                .map_err(|e| SqlError::internal(e.to_string()))?;
                Ok(Outcome::Rows(batch))
            }
            ArchiveStatement::GetArchivelog { name, tenant, to } => {
                let tenant = super::tenant::find(&self.catalog, tenant)?;
                self.executor
                    .get_archived_segment(&tenant, name, std::path::Path::new(to))?;
                Ok(Outcome::Done("ALTER SYSTEM"))
            }
        }
    }
}
