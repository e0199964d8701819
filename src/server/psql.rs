//! Answers to the catalog queries psql sends for `\d`, `\dv`, `\dt`, `\dn` and `\d name`.
//!
//! backstop has no `pg_catalog`; rather than emulate PostgreSQL's system tables, it recognises
//! the few query shapes psql 12-17 use for these commands and answers them from the DataFusion
//! catalog. Every relation is reported as a view (`relkind = 'v'`): the base tables under
//! `backstop` are read-only views of the catalog too, and psql then asks nothing table-specific.

use regex::Regex;

use crate::views::{BASE_SCHEMA, VIEW_SCHEMA};

/// A relation as psql sees it.
#[derive(Debug, Clone)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    /// `(name, type as format_type prints it)`.
    pub columns: Vec<(String, String)>,
}

impl Relation {
    /// A stable OID derived from the name, above PostgreSQL's reserved range.
    pub fn oid(&self) -> i64 {
        let hash = blake3::hash(format!("{}.{}", self.schema, self.name).as_bytes());
        let bytes: [u8; 4] = hash.as_bytes()[..4].try_into().expect("4 bytes");
        16_384 + i64::from(u32::from_le_bytes(bytes) % 1_000_000_000)
    }
}

/// What a recognised psql query asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum PsqlQuery {
    /// `\d`, `\dv`, `\dt` with optional patterns: schema, name, "Schema"/"Name"/"Type"/"Owner".
    ListRelations {
        kinds: Vec<char>,
        schema: Option<String>,
        name: Option<String>,
    },
    /// `\d name`, step 1: oid, nspname, relname of matching relations.
    FindRelation {
        schema: Option<String>,
        name: String,
    },
    /// `\d name`, step 2: the relation's flags.
    RelationInfo { oid: i64 },
    /// `\d name`, step 3: its columns.
    Columns { oid: i64 },
    /// `\dn`.
    ListSchemas,
}

fn capture(re: &str, text: &str) -> Option<String> {
    Regex::new(re)
        .ok()?
        .captures(text)?
        .get(1)
        .map(|m| m.as_str().to_string())
}

/// psql's regex pattern `^(x)$` back to a regex we apply to names.
fn pattern(text: &str, column: &str) -> Option<String> {
    capture(
        &format!(r"{column} OPERATOR\(pg_catalog\.~\) '(\^\(.*?\)\$)'"),
        text,
    )
}

pub fn recognise(sql: &str) -> Option<PsqlQuery> {
    if !sql.contains("pg_catalog.") {
        return None;
    }
    if sql.contains("FROM pg_catalog.pg_namespace n") && sql.contains(r#"AS "Name""#) {
        return Some(PsqlQuery::ListSchemas);
    }
    if sql.contains(r#"as "Schema""#) && sql.contains("c.relkind IN (") {
        let list = capture(r"c\.relkind IN \(([^)]*)\)", sql)?;
        let kinds = list.chars().filter(|c| c.is_ascii_alphabetic()).collect();
        return Some(PsqlQuery::ListRelations {
            kinds,
            schema: pattern(sql, "n.nspname"),
            name: pattern(sql, "c.relname"),
        });
    }
    if sql.contains("SELECT c.oid,") && sql.contains("c.relname OPERATOR(pg_catalog.~)") {
        return Some(PsqlQuery::FindRelation {
            schema: pattern(sql, "n.nspname"),
            name: pattern(sql, "c.relname")?,
        });
    }
    if sql.contains("SELECT c.relchecks, c.relkind") {
        let oid = capture(r"c\.oid = '(\d+)'", sql)?.parse().ok()?;
        return Some(PsqlQuery::RelationInfo { oid });
    }
    if sql.contains("SELECT a.attname") && sql.contains("pg_catalog.format_type") {
        let oid = capture(r"a\.attrelid = '(\d+)'", sql)?.parse().ok()?;
        return Some(PsqlQuery::Columns { oid });
    }
    None
}

fn matches(re: &Option<String>, value: &str) -> bool {
    re.as_ref()
        .is_none_or(|r| Regex::new(r).map(|r| r.is_match(value)).unwrap_or(false))
}

/// Relations a psql listing shows. Without a schema pattern psql lists what is visible on the
/// search path, which in backstop is the `oceanbase` schema.
pub fn list<'a>(
    relations: &'a [Relation],
    kinds: &[char],
    schema: &Option<String>,
    name: &Option<String>,
) -> Vec<&'a Relation> {
    if !kinds.contains(&'v') {
        return Vec::new();
    }
    relations
        .iter()
        .filter(|r| match schema {
            Some(_) => matches(schema, &r.schema),
            None => r.schema == VIEW_SCHEMA,
        })
        .filter(|r| matches(name, &r.name))
        .collect()
}

pub fn find<'a>(
    relations: &'a [Relation],
    schema: &Option<String>,
    name: &str,
) -> Vec<&'a Relation> {
    let name = Some(name.to_string());
    relations
        .iter()
        .filter(|r| match schema {
            Some(_) => matches(schema, &r.schema),
            None => r.schema == VIEW_SCHEMA,
        })
        .filter(|r| matches(&name, &r.name))
        .collect()
}

pub fn schemas() -> Vec<&'static str> {
    vec![BASE_SCHEMA, VIEW_SCHEMA, "public"]
}

/// The type name psql prints for an Arrow column.
pub fn format_type(dt: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType as D;
    match dt {
        D::Boolean => "boolean",
        D::Int8 | D::Int16 | D::UInt8 => "smallint",
        D::Int32 | D::UInt16 => "integer",
        D::Int64 | D::UInt32 | D::UInt64 => "bigint",
        D::Float16 | D::Float32 => "real",
        D::Float64 => "double precision",
        D::Timestamp(_, _) => "timestamp without time zone",
        D::Date32 | D::Date64 => "date",
        D::Binary | D::LargeBinary | D::BinaryView => "bytea",
        _ => "text",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DV: &str = "SELECT n.nspname as \"Schema\",\n  c.relname as \"Name\",\n  CASE c.relkind WHEN 'r' THEN 'table' END as \"Type\",\n  pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relkind IN ('v','s','')\n  AND n.nspname OPERATOR(pg_catalog.~) '^(oceanbase)$' COLLATE pg_catalog.default\nORDER BY 1,2;";

    #[test]
    fn recognises_dv_with_schema_pattern() {
        assert_eq!(
            recognise(DV),
            Some(PsqlQuery::ListRelations {
                kinds: vec!['v', 's'],
                schema: Some("^(oceanbase)$".into()),
                name: None
            })
        );
    }

    #[test]
    fn recognises_describe_steps() {
        let find = "SELECT c.oid,\n  n.nspname,\n  c.relname\nFROM pg_catalog.pg_class c\n     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE c.relname OPERATOR(pg_catalog.~) '^(cdb_ob_backup_jobs)$' COLLATE pg_catalog.default\n  AND n.nspname OPERATOR(pg_catalog.~) '^(oceanbase)$' COLLATE pg_catalog.default\nORDER BY 2, 3;";
        assert_eq!(
            recognise(find),
            Some(PsqlQuery::FindRelation {
                schema: Some("^(oceanbase)$".into()),
                name: "^(cdb_ob_backup_jobs)$".into()
            })
        );
        assert_eq!(
            recognise(
                "SELECT c.relchecks, c.relkind, c.relhasindex FROM pg_catalog.pg_class c WHERE c.oid = '16385';"
            ),
            Some(PsqlQuery::RelationInfo { oid: 16385 })
        );
        assert!(recognise("SELECT 1").is_none());
    }
}
