//! The audit trail: one row per statement that changed anything, kept across restarts.

use super::{Catalog, CatalogError, now_micros};

/// One audited statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub user: String,
    /// `ip:port` of the client.
    pub client_address: String,
    /// The statement's name (`ALTER SYSTEM BACKUP DATABASE`, `CREATE VIEW`, ...).
    pub statement_type: String,
    /// Its text with every secret masked.
    pub statement: String,
    /// `None` when it succeeded; else its SQLSTATE and message.
    pub error: Option<(String, String)>,
}

impl Catalog {
    /// Appends an audited statement.
    pub fn record_audit(&self, entry: &AuditEntry) -> Result<(), CatalogError> {
        self.write(|tx| {
            let id = Catalog::next_id(tx, "audit")?;
            let (result, code, message) = match &entry.error {
                None => ("SUCCESS", None, None),
                Some((code, message)) => ("FAILED", Some(code.clone()), Some(message.clone())),
            };
            tx.execute(
                "INSERT INTO audit (audit_id, time, user_name, client_address, statement_type, \
                 statement, result, error_code, error_message) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    id.into(),
                    now_micros().into(),
                    entry.user.clone().into(),
                    entry.client_address.clone().into(),
                    entry.statement_type.clone().into(),
                    entry.statement.clone().into(),
                    result.into(),
                    code.into(),
                    message.into(),
                ],
            )?;
            Ok(())
        })
    }
}
