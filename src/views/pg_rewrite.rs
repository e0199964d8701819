//! PostgreSQL's spellings that DataFusion does not know, rewritten in the parsed statement before
//! it is planned: clients' catalog queries are written for PostgreSQL.
//!
//! * `pg_catalog.f(...)` calls `f`: the catalog functions are registered unqualified.
//! * `a OPERATOR(pg_catalog.~) b` is `a ~ b`; `x COLLATE pg_catalog.default` is `x`.
//! * `'pg_class'::regclass` and `'int4'::regtype` are the OIDs they name; other casts to OID
//!   types (`oid`, `regproc`, `regclass` of a column, ...) are casts to `bigint`, and `name` or
//!   `"char"` are `text`.
//! * An unqualified `pg_class` is `pg_catalog.pg_class`, as PostgreSQL's search path has it.
//! * The subquery Grafana's query builder lists the search path's schemas with (`generate_series`
//!   over `string_to_array(current_setting('search_path'), ',')`, indexed as `s[i]`) is the
//!   session's schema: `x IN (that)` is `x = current_schema()`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, DataType, ExcludeSelectItem, Expr, FunctionArguments, Ident,
    ObjectName, ObjectNamePart, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    Statement, Value, ValueWithSpan, VisitMut, VisitorMut, visit_expressions_mut,
    visit_relations_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::pg_catalog::{self as pg, PG_CATALOG};

/// Whether `sql` may hold something to rewrite (most queries do not, and are not parsed twice).
pub fn wanted(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("pg_")
        || lower.contains("::")
        || lower.contains("operator(")
        || lower.contains("collate")
        || lower.contains("search_path")
        || lower.contains("parse_ident")
        || lower.contains("user")
        || lower.contains("current_role")
}

/// `sql` with `IN (the search-path subquery of Grafana's query builder)` replaced by `=` the
/// session's schema (backstop's search path is one schema, `oceanbase`). DataFusion plans no
/// subquery in ORDER BY, where Grafana puts it too.
pub fn search_path(sql: &str) -> std::borrow::Cow<'_, str> {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(
            r#"(?is)IN\s*\(\s*SELECT\s+CASE\s+WHEN\s+trim\(s\[i\]\)\s*=\s*'"\$user"'\s+THEN\s+user\s+ELSE\s+trim\(s\[i\]\)\s+END\s+FROM\s+generate_series\(.*?\)\s+as\s+i\s*,\s*string_to_array\(\s*current_setting\(\s*'search_path'\s*\)\s*,\s*','\s*\)\s+s\s*\)"#,
        )
        .expect("the search-path pattern is valid")
    });
    pattern.replace_all(sql, "= current_schema()")
}

/// Rewrites `statement` in place. `exists(schema, name)` says whether a relation exists.
pub fn rewrite(statement: &mut Statement, exists: &dyn Fn(&str, &str) -> bool) {
    let _ = statement.visit(&mut NameUserColumns);
    let _ = visit_relations_mut(statement, |name: &mut ObjectName| {
        if name.0.len() == 1
            && let Some(ident) = ident(&name.0[0])
        {
            let table = ident.value.to_ascii_lowercase();
            if table.starts_with("pg_") && exists(PG_CATALOG, &table) {
                name.0
                    .insert(0, ObjectNamePart::Identifier(Ident::new(PG_CATALOG)));
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(statement, |expr: &mut Expr| {
        rewrite_expr(expr, exists);
        ControlFlow::<()>::Continue(())
    });
}

/// `SELECT current_user` names its column `current_user`, and `SELECT current_schema()` names
/// it `current_schema`, as PostgreSQL does (DataFusion would write `current_schema()`), before
/// the words become function calls.
struct NameUserColumns;

impl VisitorMut for NameUserColumns {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        exclude_listed_columns(select);
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(expr) = item
                && let Some(word) = user_word(expr).or_else(|| catalog_call(expr))
            {
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: Ident::new(word),
                };
            }
        }
        ControlFlow::Continue(())
    }
}

/// `SELECT c.oid, c.* FROM pg_class c`, as DBeaver writes it, gives PostgreSQL two `oid`
/// columns; DataFusion wants unique names, so the wildcard leaves out the columns listed
/// beside it: `c.oid, c.* EXCLUDE (oid)`. The values are the same, the names unique.
fn exclude_listed_columns(select: &mut Select) {
    let listed: Vec<(String, Ident)> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) if parts.len() == 2 => {
                Some((parts[0].value.to_ascii_lowercase(), parts[1].clone()))
            }
            _ => None,
        })
        .collect();
    if listed.is_empty() {
        return;
    }
    for item in &mut select.projection {
        let SelectItem::QualifiedWildcard(
            SelectItemQualifiedWildcardKind::ObjectName(name),
            options,
        ) = item
        else {
            continue;
        };
        let Some(qualifier) = name.0.last().and_then(ident) else {
            continue;
        };
        let qualifier = qualifier.value.to_ascii_lowercase();
        let excluded: Vec<ObjectName> = listed
            .iter()
            .filter(|(q, _)| *q == qualifier)
            .map(|(_, column)| ObjectName::from(vec![column.clone()]))
            .collect();
        if !excluded.is_empty() && options.opt_exclude.is_none() {
            options.opt_exclude = Some(ExcludeSelectItem::Multiple(excluded));
        }
    }
}

/// The catalog functions whose column a client reads by the function's name.
const NAMED_CALLS: [&str; 10] = [
    "current_schema",
    "current_schemas",
    "current_database",
    "current_setting",
    "version",
    "pg_backend_pid",
    "pg_is_in_recovery",
    "pg_encoding_to_char",
    "pg_get_viewdef",
    "pg_get_userbyid",
];

/// The function's name, when `expr` is a call of one of [`NAMED_CALLS`].
fn catalog_call(expr: &Expr) -> Option<String> {
    let Expr::Function(f) = expr else {
        return None;
    };
    let name = ident(f.name.0.last()?)?.value.to_ascii_lowercase();
    NAMED_CALLS.contains(&name.as_str()).then_some(name)
}

/// The word, when `expr` is one of PostgreSQL's words for the session's user.
fn user_word(expr: &Expr) -> Option<String> {
    let word = match expr {
        Expr::Identifier(i) if i.quote_style.is_none() => &i.value,
        Expr::Function(f) if matches!(f.args, FunctionArguments::None) && f.name.0.len() == 1 => {
            &ident(&f.name.0[0])?.value
        }
        _ => return None,
    };
    let word = word.to_ascii_lowercase();
    USER_WORDS.contains(&word.as_str()).then_some(word)
}

fn ident(part: &ObjectNamePart) -> Option<&Ident> {
    match part {
        ObjectNamePart::Identifier(i) => Some(i),
        _ => None,
    }
}

/// The SQL words for the session's user, which PostgreSQL writes without parentheses.
const USER_WORDS: [&str; 4] = ["current_user", "session_user", "user", "current_role"];

/// The function each session registers with its own user's name.
pub const SESSION_USER_FUNCTION: &str = "backstop_session_user";

fn rewrite_expr(expr: &mut Expr, exists: &dyn Fn(&str, &str) -> bool) {
    if user_word(expr).is_some() {
        if let Ok(call) = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&format!("{SESSION_USER_FUNCTION}()"))
            .and_then(|mut p| p.parse_expr())
        {
            *expr = call;
        }
        return;
    }
    match expr {
        // `ARRAY(SELECT x ...)` is the array of the subquery's rows.
        Expr::Function(f)
            if f.name.0.len() == 1
                && ident(&f.name.0[0]).is_some_and(|i| i.value.eq_ignore_ascii_case("array"))
                && matches!(f.args, FunctionArguments::Subquery(_)) =>
        {
            let FunctionArguments::Subquery(query) = &f.args else {
                return;
            };
            // As the scalar subquery of `array_agg` over its one column, which keeps its
            // correlation with the outer query.
            let mut query = query.clone();
            if let SetExpr::Select(select) = query.body.as_mut()
                && let [
                    SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. },
                ] = select.projection.as_mut_slice()
                && let Ok(aggregated) = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&format!("array_agg({item})"))
                    .and_then(|mut p| p.parse_expr())
            {
                *item = aggregated;
                *expr = Expr::Subquery(query);
            }
        }
        // `(composite).field` is the struct's field.
        Expr::CompoundFieldAccess { root, access_chain }
            if matches!(root.as_ref(), Expr::Nested(_))
                && let [AccessExpr::Dot(Expr::Identifier(field))] = access_chain.as_slice() =>
        {
            let text = format!("get_field({root}, '{}')", field.value);
            if let Ok(parsed) = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(&text)
                .and_then(|mut p| p.parse_expr())
            {
                *expr = parsed;
            }
        }
        Expr::Function(f) if f.name.0.len() == 2 => {
            let schema = ident(&f.name.0[0]).map(|i| i.value.to_ascii_lowercase());
            if matches!(schema.as_deref(), Some(PG_CATALOG | pg::INFORMATION_SCHEMA)) {
                f.name.0.remove(0);
            }
        }
        Expr::BinaryOp { op, .. } => {
            if let BinaryOperator::PGCustomBinaryOperator(parts) = op
                && let Some(plain) = parts.last().and_then(|p| operator(p))
            {
                *op = plain;
            }
        }
        Expr::Collate { expr: inner, .. } => {
            let inner = std::mem::replace(inner.as_mut(), Expr::value(Value::Null));
            *expr = inner;
            rewrite_expr(expr, exists);
        }
        Expr::Cast {
            expr: inner,
            data_type,
            ..
        } => {
            let target = type_word(data_type);
            let literal = match inner.as_ref() {
                Expr::Value(ValueWithSpan {
                    value: Value::SingleQuotedString(s),
                    ..
                }) => Some(s.clone()),
                _ => None,
            };
            match (target.as_str(), literal) {
                ("regclass", Some(name)) => {
                    *expr = number(regclass(&name, exists).unwrap_or(0));
                }
                ("regtype", Some(name)) => {
                    *expr = number(pg::type_by_name(&name).map_or(0, |t| t.oid));
                }
                ("oid", Some(text)) if text.trim().parse::<i64>().is_ok() => {
                    *expr = number(text.trim().parse().unwrap_or(0));
                }
                (
                    "regclass" | "regtype" | "regproc" | "regprocedure" | "regnamespace"
                    | "regrole" | "regoper" | "oid" | "xid" | "cid" | "int2vector" | "oidvector",
                    _,
                ) => *data_type = DataType::BigInt(None),
                ("name" | "char" | "\"char\"" | "bpchar" | "text", _) => {
                    *data_type = DataType::Text;
                }
                _ => {}
            }
        }
        _ => {}
    }
}

fn number(n: i64) -> Expr {
    Expr::value(Value::Number(n.to_string(), false))
}

/// A cast's type in lower case, without `pg_catalog.`.
fn type_word(data_type: &DataType) -> String {
    let text = data_type.to_string().to_ascii_lowercase();
    text.trim_start_matches("pg_catalog.").to_string()
}

fn operator(word: &str) -> Option<BinaryOperator> {
    Some(match word {
        "~" => BinaryOperator::PGRegexMatch,
        "~*" => BinaryOperator::PGRegexIMatch,
        "!~" => BinaryOperator::PGRegexNotMatch,
        "!~*" => BinaryOperator::PGRegexNotIMatch,
        "~~" => BinaryOperator::PGLikeMatch,
        "!~~" => BinaryOperator::PGNotLikeMatch,
        "=" => BinaryOperator::Eq,
        "<>" => BinaryOperator::NotEq,
        "<" => BinaryOperator::Lt,
        ">" => BinaryOperator::Gt,
        "<=" => BinaryOperator::LtEq,
        ">=" => BinaryOperator::GtEq,
        _ => return None,
    })
}

/// The OID `'name'::regclass` stands for: a qualified name, or the first schema of the search
/// path (pg_catalog, then the views) that has it.
fn regclass(name: &str, exists: &dyn Fn(&str, &str) -> bool) -> Option<i64> {
    let name = name.trim().trim_matches('"').to_ascii_lowercase();
    if let Some((schema, table)) = name.split_once('.') {
        return exists(schema, table).then(|| pg::relation_oid(schema, table));
    }
    [PG_CATALOG, super::VIEW_SCHEMA, "public", super::BASE_SCHEMA]
        .into_iter()
        .find(|schema| exists(schema, &name))
        .map(|schema| pg::relation_oid(schema, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        let exists = |schema: &str, name: &str| {
            (schema == "pg_catalog" && name.starts_with("pg_"))
                || (schema == "oceanbase" && name == "cdb_ob_backup_jobs")
        };
        rewrite(&mut statements[0], &exists);
        statements[0].to_string()
    }

    #[test]
    fn grafanas_search_path_subquery_is_the_sessions_schema() {
        let grafana = r#"SELECT quote_ident(table_name) FROM information_schema.tables WHERE
            quote_ident(table_schema) IN (
              SELECT
                CASE WHEN trim(s[i]) = '"$user"' THEN user ELSE trim(s[i]) END
              FROM
                generate_series(
                  array_lower(string_to_array(current_setting('search_path'),','),1),
                  array_upper(string_to_array(current_setting('search_path'),','),1)
                ) as i,
                string_to_array(current_setting('search_path'),',') s
              )"#;
        let rewritten = search_path(grafana);
        assert!(
            rewritten.ends_with("quote_ident(table_schema) = current_schema()"),
            "{rewritten}"
        );
        assert_eq!(search_path("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn dbeavers_listed_and_starred_columns_get_unique_names() {
        assert_eq!(
            rewritten("SELECT db.oid, db.* FROM pg_database db"),
            "SELECT db.oid, db.* EXCLUDE (oid) FROM pg_catalog.pg_database db"
        );
        assert_eq!(
            rewritten("SELECT current_schema(), pg_catalog.version()"),
            "SELECT current_schema() AS current_schema, version() AS version"
        );
    }

    #[test]
    fn the_users_words_are_the_sessions_user() {
        assert_eq!(
            rewritten("SELECT current_user, session_user, user, \"user\" FROM t"),
            "SELECT backstop_session_user() AS current_user, backstop_session_user() AS session_user, \
             backstop_session_user() AS user, \"user\" FROM t"
        );
    }

    #[test]
    fn psql_and_jdbc_spellings_become_plain_sql() {
        assert_eq!(
            rewritten(
                "SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_attribute a \
                 WHERE c.relname OPERATOR(pg_catalog.~) '^(x)$' COLLATE pg_catalog.default"
            ),
            "SELECT format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a \
             WHERE c.relname ~ '^(x)$'"
        );
        assert_eq!(
            rewritten(
                "SELECT 'pg_class'::regclass, 'cdb_ob_backup_jobs'::regclass, \
                 'int4'::regtype, '16384'::pg_catalog.oid, c.oid::regclass, x::name"
            ),
            format!(
                "SELECT 1259, {}, 23, 16384, c.oid::BIGINT, x::TEXT",
                pg::relation_oid("oceanbase", "cdb_ob_backup_jobs")
            )
        );
    }
}
