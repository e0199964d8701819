//! Applying ARCHIVELOG, NOARCHIVELOG and the archive-push/-get statements.

use super::{Caller, Control, Outcome};
use crate::error::SqlResult;
use crate::sql::ast::ArchiveStatement;

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_archive(
        &self,
        _caller: &Caller,
        statement: &ArchiveStatement,
        wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            ArchiveStatement::Archivelog { tenants } => {
                let cluster = !matches!(tenants, Some(crate::sql::ast::TenantScope::List(_)));
                let tenants = self.archive_scope(tenants, true)?;
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
                let detail = match outcome {
                    crate::executor::archive::PushOutcome::Skipped => Some(
                        "not archived: the round is not DOING and BINDING=OPTIONAL lets the \
                         source go on"
                            .to_string(),
                    ),
                    _ => None,
                };
                let batch = crate::views::rows(
                    &[
                        ("segment", datafusion::arrow::datatypes::DataType::Utf8),
                        ("status", datafusion::arrow::datatypes::DataType::Utf8),
                        ("detail", datafusion::arrow::datatypes::DataType::Utf8),
                    ],
                    vec![vec![name, Some(outcome.as_str().to_string()), detail]],
                )?;
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
