//! Stored values of parameters and destinations, system-wide or per tenant.

use super::parameters::{self, ArchiveDest};
use super::{Catalog, CatalogError, SYS_TENANT_ID, Txn, Value, now_micros};

impl Catalog {
    /// Stores a checked value. `shown` is what views print (secrets masked), `raw` what the
    /// executor uses.
    pub fn set_parameter(
        &self,
        tenant_id: i64,
        name: &str,
        shown: &str,
        raw: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO parameter (tenant_id, name, value, raw_value, update_time) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET \
                 value = excluded.value, raw_value = excluded.raw_value, \
                 update_time = excluded.update_time",
                &[
                    tenant_id.into(),
                    name.into(),
                    shown.into(),
                    raw.into(),
                    now_micros().into(),
                ],
            )?;
            if name == "log_archive_dest" || name == "log_archive_dest_state" {
                write_archive_dest_rows(tx, tenant_id)?;
            }
            Ok(())
        })
    }

    /// The value in force for a tenant: its own, else the system's, else the default.
    pub fn parameter(&self, tenant_id: i64, name: &str) -> Result<Option<String>, CatalogError> {
        let rows = self.read(
            "SELECT raw_value FROM parameter WHERE name = ? AND tenant_id IN (?, ?) \
             ORDER BY tenant_id = ? DESC LIMIT 1",
            &[
                name.into(),
                tenant_id.into(),
                SYS_TENANT_ID.into(),
                tenant_id.into(),
            ],
        )?;
        let stored = rows
            .into_iter()
            .next()
            .and_then(|mut r| r.pop()?.into_string());
        Ok(stored.or_else(|| parameters::lookup(name).and_then(|d| d.default.map(str::to_string))))
    }
}

/// Rewrites the CDB_OB_ARCHIVE_DEST rows of a tenant from its LOG_ARCHIVE_DEST and state.
fn write_archive_dest_rows(tx: &dyn Txn, tenant_id: i64) -> Result<(), CatalogError> {
    let value_of = |name: &str| -> Result<Option<String>, CatalogError> {
        let rows = tx.query(
            "SELECT raw_value FROM parameter WHERE tenant_id = ? AND name = ?",
            &[tenant_id.into(), name.into()],
        )?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|mut r| r.pop()?.into_string()))
    };
    tx.execute(
        "DELETE FROM archive_dest WHERE tenant_id = ?",
        &[tenant_id.into()],
    )?;
    let Some(dest) = value_of("log_archive_dest")?.and_then(|d| ArchiveDest::parse(&d).ok()) else {
        return Ok(());
    };
    let state = value_of("log_archive_dest_state")?.unwrap_or_else(|| "ENABLE".into());
    let binding = format!("{:?}", dest.binding).to_ascii_uppercase();
    let rows: [(&str, String); 5] = [
        ("dest_id", "1".into()),
        ("path", crate::catalog::mask_secrets(&dest.location)),
        ("binding", binding),
        (
            "piece_switch_interval",
            parameters::format_duration(dest.piece_switch_interval),
        ),
        ("state", state),
    ];
    for (name, value) in rows {
        tx.execute(
            // LOG_ARCHIVE_DEST is destination number 0 (LOG_ARCHIVE_DEST_1 would be 1).
            "INSERT INTO archive_dest (tenant_id, dest_no, name, value) VALUES (?, 0, ?, ?)",
            &[tenant_id.into(), name.into(), Value::Text(value)],
        )?;
    }
    Ok(())
}
