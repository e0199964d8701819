//! The two catalog queries of psql's `\d name` that DataFusion cannot plan: the relation's flags
//! (an `array(select ... unnest(...))` over TOAST options) and its columns (correlated
//! subqueries over `pg_attrdef` and `pg_collation`). Every other psql command (`\d`, `\dv+`,
//! `\dn`, `\df`, `\l`, `\du`) reads `pg_catalog` like any client.

use regex::Regex;

/// What a recognised psql query asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum PsqlQuery {
    /// `\d name`, step 2: the relation's flags.
    RelationInfo { oid: i64 },
    /// `\d name`, step 3: its columns, with the optional columns `\d+` adds, in the order the
    /// query lists them.
    Columns { oid: i64, extra: Vec<Extra> },
}

/// A column `\d+` adds to the column list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    Storage,
    Compression,
    StatisticsTarget,
    Description,
}

impl Extra {
    pub fn name(self) -> &'static str {
        match self {
            Extra::Storage => "attstorage",
            Extra::Compression => "attcompression",
            Extra::StatisticsTarget => "attstattarget",
            Extra::Description => "col_description",
        }
    }
}

fn capture(re: &str, text: &str) -> Option<String> {
    Regex::new(re)
        .ok()?
        .captures(text)?
        .get(1)
        .map(|m| m.as_str().to_string())
}

pub fn recognise(sql: &str) -> Option<PsqlQuery> {
    if !sql.contains("pg_catalog.") {
        return None;
    }
    if sql.contains("SELECT c.relchecks, c.relkind") {
        let oid = capture(r"c\.oid = '(\d+)'", sql)?.parse().ok()?;
        return Some(PsqlQuery::RelationInfo { oid });
    }
    if sql.contains("SELECT a.attname") && sql.contains("pg_catalog.format_type") {
        let oid = capture(r"a\.attrelid = '(\d+)'", sql)?.parse().ok()?;
        let mut extra: Vec<(usize, Extra)> = [
            ("a.attstorage", Extra::Storage),
            ("a.attcompression", Extra::Compression),
            ("a.attstattarget", Extra::StatisticsTarget),
            ("pg_catalog.col_description", Extra::Description),
        ]
        .into_iter()
        .filter_map(|(marker, e)| sql.find(marker).map(|at| (at, e)))
        .collect();
        extra.sort_by_key(|(at, _)| *at);
        return Some(PsqlQuery::Columns {
            oid,
            extra: extra.into_iter().map(|(_, e)| e).collect(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_describe_steps() {
        assert_eq!(
            recognise(
                "SELECT c.relchecks, c.relkind, c.relhasindex FROM pg_catalog.pg_class c WHERE c.oid = '16385';"
            ),
            Some(PsqlQuery::RelationInfo { oid: 16385 })
        );
        let columns = "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  a.attnotnull,\n  a.attstorage,\n  pg_catalog.col_description(a.attrelid, a.attnum)\nFROM pg_catalog.pg_attribute a\nWHERE a.attrelid = '16384' AND a.attnum > 0";
        assert_eq!(
            recognise(columns),
            Some(PsqlQuery::Columns {
                oid: 16384,
                extra: vec![Extra::Storage, Extra::Description]
            })
        );
        assert!(recognise("SELECT 1").is_none());
        assert!(recognise("SELECT n.nspname FROM pg_catalog.pg_namespace n").is_none());
    }
}
