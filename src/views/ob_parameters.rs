//! `backstop.parameter_setting`: every parameter of backstop as OceanBase's GV$OB_PARAMETERS
//! shows its parameters, one row at cluster scope (the system's value) and one per tenant (the
//! value in force for it: its own, else the system's, else the default). Values are shown with
//! their secrets masked. `SHOW PARAMETERS` and the GV$/V$OB_PARAMETERS views read it.

use super::pg_catalog::{Cell, Col, Context, Rows, int, text};
use crate::catalog::parameters::{Kind, PARAMETERS, ParameterDef};
use crate::catalog::{SYS_TENANT_ID, mask_secrets};

/// OceanBase's DATA_TYPE words.
fn data_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Duration { .. } => "TIME",
        Kind::Size { .. } => "CAPACITY",
        Kind::Integer { .. } => "INT",
        Kind::Bool => "BOOL",
        _ => "STRING",
    }
}

/// OceanBase groups parameters in sections; backstop's follow their subject.
fn section(name: &str) -> &'static str {
    if name.contains("archive") || name.starts_with("log_") || name.starts_with("pg_archive") {
        "LOG_ARCHIVE"
    } else if name.starts_with("plan_") {
        "BACKUP_PLAN"
    } else if name.starts_with("pg_") || name == "allowed_paths" {
        "BACKSTOP"
    } else {
        "BACKUP"
    }
}

pub(super) fn table() -> (&'static str, Vec<(&'static str, Col)>, Rows) {
    use Col::{Int as I, Text as T};
    (
        "parameter_setting",
        vec![
            ("svr_ip", T),
            ("svr_port", I),
            ("zone", T),
            ("scope", T),
            ("tenant_id", I),
            ("name", T),
            ("data_type", T),
            ("value", T),
            ("info", T),
            ("section", T),
            ("edit_level", T),
            ("default_value", T),
            ("isdefault", T),
            ("source", T),
            ("tenant_name", T),
        ],
        Box::new(rows),
    )
}

fn rows(ctx: &Context) -> Vec<Vec<Cell>> {
    let stored = ctx
        .catalog
        .read("SELECT tenant_id, name, value FROM parameter", &[])
        .unwrap_or_default();
    let own = |tenant: i64, name: &str| -> Option<String> {
        stored
            .iter()
            .find(|r| r[0].as_i64() == Some(tenant) && r[1].as_str() == Some(name))
            .and_then(|r| r[2].as_str().map(mask_secrets))
    };
    let tenants: Vec<(i64, String)> = ctx
        .catalog
        .read(
            "SELECT tenant_id, tenant_name FROM tenant WHERE drop_time IS NULL AND tenant_id <> ? \
             ORDER BY tenant_id",
            &[SYS_TENANT_ID.into()],
        )
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r[0].as_i64().unwrap_or_default(),
                r[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let (ip, port) = ctx.address.map_or((String::new(), 0), |a| {
        (a.ip().to_string(), i64::from(a.port()))
    });
    let row = |p: &ParameterDef, scope: &str, tenant: Option<(i64, &str)>| {
        let system = own(SYS_TENANT_ID, p.name);
        let tenant_own = tenant.and_then(|(id, _)| own(id, p.name));
        let (value, source) = match (&tenant_own, &system) {
            (Some(v), _) => (Some(v.clone()), "TENANT"),
            (None, Some(v)) => (Some(v.clone()), "CLUSTER"),
            (None, None) => (p.default.map(str::to_string), "DEFAULT"),
        };
        let default = p.default.map(str::to_string);
        vec![
            text(ip.clone()),
            int(port),
            text("zone1"),
            text(scope),
            tenant.map_or(Cell::Null, |(id, _)| int(id)),
            text(p.name),
            text(data_type(p.kind)),
            value.clone().map_or(Cell::Null, text),
            text(p.description),
            text(section(p.name)),
            text("DYNAMIC_EFFECTIVE"),
            default.clone().map_or(Cell::Null, text),
            text(if source == "DEFAULT" || value == default {
                "YES"
            } else {
                "NO"
            }),
            text(source),
            tenant.map_or(Cell::Null, |(_, name)| text(name)),
        ]
    };
    let visible = || PARAMETERS.iter().filter(|p| !p.name.starts_with('_'));
    let mut out: Vec<Vec<Cell>> = visible().map(|p| row(p, "CLUSTER", None)).collect();
    for (id, name) in &tenants {
        out.extend(visible().map(|p| row(p, "TENANT", Some((*id, name.as_str())))));
    }
    out
}
