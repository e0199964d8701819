//! ALTER SYSTEM SET: destinations and the parameters of SPEC §5, system-wide or per tenant.

use super::{Caller, Control};
use crate::sql::ast::ParameterStatement;

use super::Outcome;
use crate::catalog::parameters::{self, ArchiveDest, Kind};
use crate::catalog::{Catalog, SYS_TENANT_ID, mask_secrets};
use crate::error::{SqlError, SqlResult};
use crate::executor::destination;
use crate::sql::ast::SetValue;

pub fn apply(
    catalog: &Catalog,
    executor: &std::sync::Arc<crate::executor::Executor>,
    name: &str,
    value: &SetValue,
    tenant: Option<&str>,
) -> SqlResult<Outcome> {
    let def = parameters::lookup(name).ok_or_else(|| {
        let known: Vec<&str> = parameters::PARAMETERS.iter().map(|p| p.name).collect();
        SqlError::invalid_value(format!("unrecognized parameter {name}"))
            .with_hint(format!("parameters: {}", known.join(", ")))
    })?;
    let text = match value {
        SetValue::String(s) | SetValue::Number(s) | SetValue::Word(s) => s.as_str(),
    };
    let raw = parameters::normalize(def, text).map_err(|e| SqlError::invalid_value(e.message))?;
    let tenant_id = match tenant {
        Some(t) => super::tenant::find(catalog, t)?.id,
        None => SYS_TENANT_ID,
    };
    let is_destination = matches!(def.kind, Kind::DestinationUri | Kind::ArchiveDest);
    if is_destination && executor.has_running_jobs() {
        return Err(SqlError::wrong_state(format!(
            "{} cannot change while jobs are running",
            def.name.to_ascii_uppercase()
        ))
        .with_hint("wait for the jobs in CDB_OB_BACKUP_JOBS to end, or cancel them"));
    }
    match def.kind {
        Kind::DestinationUri => {
            destination::prepare(catalog, &raw, catalog.installation_id())?;
        }
        Kind::ArchiveDest => {
            let dest = ArchiveDest::parse(&raw).map_err(SqlError::invalid_value)?;
            destination::prepare(catalog, &dest.location, catalog.installation_id())?;
        }
        _ => {}
    }
    let applies_to: Vec<i64> = if tenant_id == SYS_TENANT_ID {
        catalog.user_tenants()?.iter().map(|t| t.id).collect()
    } else {
        vec![tenant_id]
    };
    if def.name == "log_archive_dest" {
        for &id in &applies_to {
            if let Some(round) = catalog.latest_round(id)?.filter(|r| r.status != "STOP") {
                return Err(SqlError::wrong_state(format!(
                    "LOG_ARCHIVE_DEST cannot change while archive round {} of tenant {id} is {}",
                    round.round_id, round.status
                ))
                .with_hint("stop it first with ALTER SYSTEM NOARCHIVELOG"));
            }
        }
    }
    catalog.set_parameter(tenant_id, def.name, &mask_secrets(&raw), &raw)?;
    tracing::info!(parameter = def.name, value = %mask_secrets(&raw), tenant_id, "parameter set");
    if def.name == "log_archive_dest_state" {
        executor.archive_dest_state(&applies_to, raw.eq_ignore_ascii_case("DEFER"))?;
    }
    Ok(Outcome::Done("ALTER SYSTEM"))
}

impl Control {
    /// Applies a statement of this family for `caller`; `wait` is its trailing `WAIT`.
    pub(super) fn apply_system_set(
        &self,
        _caller: &Caller,
        statement: &ParameterStatement,
        _wait: bool,
    ) -> SqlResult<Outcome> {
        match statement {
            ParameterStatement::SetParameter {
                name,
                value,
                tenant,
            } => apply(
                &self.catalog,
                &self.executor,
                name,
                value,
                tenant.as_deref(),
            ),
        }
    }
}
