//! What PostgreSQL clients send besides queries: `SET`, `SHOW`, `RESET`, transaction control,
//! and psql's catalog queries. Each gets the answer a driver expects, so psql, JDBC, psycopg and
//! Grafana connect and work unchanged.

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use regex::Regex;

use super::Shared;
use super::psql::{self, Extra, PsqlQuery};
use super::session::Session;
use crate::error::{SqlError, SqlResult};
use crate::views::pg_catalog;
use crate::views::{Views, rows as batch};

/// A client-compatibility answer.
pub enum Answer {
    Tag(&'static str),
    Rows(RecordBatch),
    Begin,
    Commit,
    Rollback,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("compat patterns are valid")
}

fn unquote(value: &str) -> String {
    let v = value.trim().trim_end_matches(';').trim();
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        v[1..v.len() - 1].replace("''", "'")
    } else {
        v.trim_matches('"').to_string()
    }
}

/// Answers `sql` if it is a compatibility statement; `None` sends it on to DataFusion.
pub async fn answer(shared: &Shared, session: &Session, sql: &str) -> Option<SqlResult<Answer>> {
    let text = sql.trim().trim_end_matches(';').trim();
    let upper = text.to_ascii_uppercase();
    let first = upper.split_whitespace().next().unwrap_or_default();
    match first {
        "BEGIN" | "START" if upper.starts_with("START TRANSACTION") || first == "BEGIN" => {
            Some(Ok(Answer::Begin))
        }
        "COMMIT" | "END" => Some(Ok(Answer::Commit)),
        "ROLLBACK" | "ABORT" => Some(Ok(Answer::Rollback)),
        "SET" => set(shared, session, text),
        "RESET" => {
            let name = text[5..].trim();
            session.reset_var(name);
            if name.eq_ignore_ascii_case("tenant") || name.eq_ignore_ascii_case("all") {
                Views::set_session_tenant(&session.ctx, crate::catalog::SYS_TENANT_ID);
            }
            Some(Ok(Answer::Tag("RESET")))
        }
        "DISCARD" => Some(Ok(Answer::Tag("DISCARD ALL"))),
        "DEALLOCATE" => Some(Ok(Answer::Tag("DEALLOCATE"))),
        "SHOW" if upper.starts_with("SHOW PARAMETERS") => {
            Some(show_parameters(shared, session, text).await)
        }
        "SHOW" => Some(show(session, text)),
        "LISTEN" | "UNLISTEN" => Some(listen(session, first, text[first.len()..].trim())),
        _ => match psql::recognise(sql) {
            Some(query) => Some(psql_answer(shared, query).await),
            None => None,
        },
    }
}

/// `LISTEN channel` / `UNLISTEN {channel | *}`: which events reach this session. A channel is
/// an identifier, folded to lower case unless quoted, as PostgreSQL does.
fn listen(session: &Session, verb: &str, rest: &str) -> SqlResult<Answer> {
    let channel = if rest.starts_with('"') {
        unquote(rest)
    } else {
        rest.to_ascii_lowercase()
    };
    if verb == "UNLISTEN" {
        session.unlisten(&channel);
        return Ok(Answer::Tag("UNLISTEN"));
    }
    if !crate::events::is_channel(&channel) {
        return Err(SqlError::syntax(
            format!("syntax error at or near \"{rest}\": LISTEN takes a channel name"),
            verb.len() + 2,
        ));
    }
    session.listen(&channel);
    Ok(Answer::Tag("LISTEN"))
}

fn set(shared: &Shared, session: &Session, text: &str) -> Option<SqlResult<Answer>> {
    let caps = re(
        r"(?is)^SET\s+(?:SESSION\s+|LOCAL\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*(?:=|\s+TO\s+)\s*(.*)$",
    )
    .captures(text);
    let Some(caps) = caps else {
        // SET TIME ZONE 'UTC', SET SESSION CHARACTERISTICS ...: accepted, nothing to keep.
        return Some(Ok(Answer::Tag("SET")));
    };
    let name = caps[1].to_ascii_lowercase();
    let value = unquote(&caps[2]);
    if name.starts_with("datafusion.") {
        return None;
    }
    if name == "tenant" {
        let tenant_id = if value.eq_ignore_ascii_case("sys") {
            crate::catalog::SYS_TENANT_ID
        } else {
            match shared.catalog.tenant_by_name(&value) {
                Ok(Some(t)) => t.id,
                Ok(None) => {
                    return Some(Err(SqlError::undefined(format!(
                        "tenant {value} does not exist"
                    ))
                    .with_ob("OB_TENANT_NOT_EXIST", 5161)));
                }
                Err(e) => return Some(Err(e.into())),
            }
        };
        Views::set_session_tenant(&session.ctx, tenant_id);
    }
    session.set_var(&name, &value);
    Some(Ok(Answer::Tag("SET")))
}

/// The setting `SHOW ...` names: `SHOW TRANSACTION ISOLATION LEVEL` is `transaction_isolation`.
pub fn show_name(sql: &str) -> String {
    let rest = sql.trim().trim_end_matches(';').trim()[4..].trim();
    if rest.eq_ignore_ascii_case("TRANSACTION ISOLATION LEVEL") {
        "transaction_isolation".to_string()
    } else {
        rest.trim_matches('"').to_ascii_lowercase()
    }
}

fn show(session: &Session, text: &str) -> SqlResult<Answer> {
    let name = show_name(text);
    let value = session.var(&name).ok_or_else(|| {
        SqlError::undefined(format!("unrecognized configuration parameter \"{name}\""))
    })?;
    Ok(Answer::Rows(batch(
        &[(name.as_str(), DataType::Utf8)],
        vec![vec![Some(value)]],
    )?))
}

/// `SHOW PARAMETERS [LIKE 'pattern'] [TENANT [=] t]`, in OceanBase's columns: the cluster's
/// values, or with TENANT those in force for the tenant.
async fn show_parameters(shared: &Shared, session: &Session, text: &str) -> SqlResult<Answer> {
    let caps = re(r"(?is)^SHOW\s+PARAMETERS(?:\s+LIKE\s+'((?:[^']|'')*)')?(?:\s+TENANT\s*=?\s*([A-Za-z_][A-Za-z0-9_]*))?\s*$")
        .captures(text)
        .ok_or_else(|| {
            SqlError::syntax(
                "syntax error in SHOW PARAMETERS: expected [LIKE 'pattern'] [TENANT = name]",
                1,
            )
        })?;
    let like = caps.get(1).map(|m| m.as_str().replace("''", "'"));
    let scope = match caps.get(2).map(|m| m.as_str()) {
        Some(tenant) => {
            let found = shared.catalog.tenant_by_name(tenant)?.ok_or_else(|| {
                SqlError::undefined(format!("tenant {tenant} does not exist"))
                    .with_ob("OB_TENANT_NOT_EXIST", 5161)
            })?;
            format!("scope = 'TENANT' AND tenant_id = {}", found.id)
        }
        None => "scope = 'CLUSTER'".to_string(),
    };
    let filter = match like {
        Some(pattern) => format!("{scope} AND name LIKE '{}'", pattern.replace('\'', "''")),
        None => scope,
    };
    let sql = format!(
        "SELECT zone, 'observer' AS svr_type, svr_ip, svr_port, name, data_type, value, info, \
         section, scope, source, edit_level, default_value, \
         CASE isdefault WHEN 'YES' THEN 1 ELSE 0 END AS isdefault \
         FROM backstop.parameter_setting WHERE {filter} ORDER BY name"
    );
    let frame = session
        .ctx
        .sql(&sql)
        .await
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
    let batches = frame
        .collect()
        .await
        .map_err(|e| SqlError::internal(e.to_string()))?;
    let all = datafusion::arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| SqlError::internal(e.to_string()))?;
    Ok(Answer::Rows(all))
}

async fn psql_answer(shared: &Shared, query: PsqlQuery) -> SqlResult<Answer> {
    let relations = shared.views.relations().await;
    let text = |s: &str| Some(s.to_string());
    let rows = match query {
        PsqlQuery::RelationInfo { oid } => {
            let found = relations.iter().find(|r| r.oid == oid);
            let row = || {
                vec![
                    text("0"),
                    text("v"),
                    text("false"),
                    text("false"),
                    text("false"),
                    text("false"),
                    text("false"),
                    text("false"),
                    text("false"),
                    text(""),
                    text("0"),
                    text(""),
                    text("p"),
                    text("d"),
                    None,
                ]
            };
            batch(
                &[
                    ("relchecks", DataType::Int64),
                    ("relkind", DataType::Utf8),
                    ("relhasindex", DataType::Boolean),
                    ("relhasrules", DataType::Boolean),
                    ("relhastriggers", DataType::Boolean),
                    ("relrowsecurity", DataType::Boolean),
                    ("relforcerowsecurity", DataType::Boolean),
                    ("relhasoids", DataType::Boolean),
                    ("relispartition", DataType::Boolean),
                    ("reloptions", DataType::Utf8),
                    ("reltablespace", DataType::Int64),
                    ("reloftype", DataType::Utf8),
                    ("relpersistence", DataType::Utf8),
                    ("relreplident", DataType::Utf8),
                    ("amname", DataType::Utf8),
                ],
                found.map(|_| row()).into_iter().collect(),
            )?
        }
        PsqlQuery::Columns { oid, extra } => {
            let mut rows = Vec::new();
            for r in relations.iter().filter(|r| r.oid == oid) {
                for (name, dt) in &r.columns {
                    let t = pg_catalog::type_by_oid(pg_catalog::type_oid(dt));
                    let mut row = vec![
                        text(name),
                        t.map(|t| t.display.to_string()),
                        None,
                        text("false"),
                        None,
                        text(""),
                        text(""),
                    ];
                    for e in &extra {
                        row.push(match e {
                            Extra::Storage => text(if t.is_some_and(|t| t.len > 0) {
                                "p"
                            } else {
                                "x"
                            }),
                            Extra::Compression => text(""),
                            Extra::StatisticsTarget => None,
                            Extra::Description => None,
                        });
                    }
                    rows.push(row);
                }
            }
            let mut columns = vec![
                ("attname", DataType::Utf8),
                ("format_type", DataType::Utf8),
                ("pg_get_expr", DataType::Utf8),
                ("attnotnull", DataType::Boolean),
                ("attcollation", DataType::Utf8),
                ("attidentity", DataType::Utf8),
                ("attgenerated", DataType::Utf8),
            ];
            columns.extend(extra.iter().map(|e| (e.name(), DataType::Utf8)));
            batch(&columns, rows)?
        }
    };
    Ok(Answer::Rows(rows))
}
