//! The functions of PostgreSQL's catalog that clients call in their metadata queries
//! (`format_type`, `pg_get_userbyid`, `obj_description`, `pg_table_is_visible`,
//! `has_table_privilege`, `pg_get_viewdef`, `pg_get_constraintdef`, ...), answered from the same
//! catalog as `pg_catalog`'s tables.
//!
//! Each takes any arguments (clients pass OIDs as integers, text or casts) and works on their
//! text, row by row: metadata queries are small.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::catalog::CatalogProviderList;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::pg_catalog::{self as pg, OWNER_OID, PG_CATALOG};
use super::{CATALOG_NAME, VIEW_SCHEMA};

/// What a function reads besides its arguments.
#[derive(Clone)]
pub struct Env {
    pub catalogs: Arc<dyn CatalogProviderList>,
}

impl Env {
    /// The schema and name of the relation with `oid`.
    fn relation(&self, oid: i64) -> Option<(String, String)> {
        let catalog = self.catalogs.catalog(CATALOG_NAME)?;
        for schema in catalog.schema_names() {
            let provider = catalog.schema(&schema)?;
            for name in provider.table_names() {
                if pg::relation_oid(&schema, &name) == oid {
                    return Some((schema, name));
                }
            }
        }
        None
    }

    fn view_definition(&self, oid: i64) -> Option<String> {
        let (schema, name) = self.relation(oid)?;
        let provider = self.catalogs.catalog(CATALOG_NAME)?.schema(&schema)?;
        // The memory schema answers at once; nothing here waits.
        let table = futures::executor::block_on(provider.table(&name)).ok()??;
        table.get_table_definition().map(str::to_string)
    }
}

type Body = fn(&Env, &[Option<String>]) -> Option<String>;

/// One function: its name, what it returns, and its body over the arguments' text.
struct PgFunction {
    name: &'static str,
    returns: DataType,
    body: Body,
    env: Env,
    signature: Signature,
}

impl std::fmt::Debug for PgFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgFunction({})", self.name)
    }
}

impl PartialEq for PgFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for PgFunction {}

impl Hash for PgFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for PgFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        // All-scalar arguments give one value; otherwise one per row (there may be none).
        let rows = if scalar { 1 } else { args.number_rows };
        let texts: Vec<StringArray> = args
            .args
            .iter()
            .map(|a| {
                let array = a.to_array(rows)?;
                let text = datafusion::arrow::compute::cast(&array, &DataType::Utf8)?;
                Ok(text
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
                    .clone())
            })
            .collect::<Result<_>>()?;
        let n = rows;
        let values: Vec<Option<String>> = (0..n)
            .map(|row| {
                let row_args: Vec<Option<String>> = texts
                    .iter()
                    .map(|t| (!t.is_null(row)).then(|| t.value(row).to_string()))
                    .collect();
                (self.body)(&self.env, &row_args)
            })
            .collect();
        let array: ArrayRef = match &self.returns {
            DataType::Struct(_) => datafusion::arrow::array::new_null_array(&self.returns, n),
            DataType::List(_) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for v in &values {
                    match v {
                        Some(items) => {
                            for item in items.split(',').filter(|i| !i.is_empty()) {
                                b.values().append_value(item);
                            }
                            b.append(true);
                        }
                        None => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
            ty => {
                let text: StringArray = values.into_iter().collect();
                datafusion::arrow::compute::cast(&text, ty)?
            }
        };
        Ok(if scalar {
            ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&array, 0)?)
        } else {
            ColumnarValue::Array(array)
        })
    }
}

fn oid(arg: &Option<String>) -> Option<i64> {
    arg.as_deref()?.trim().parse().ok()
}

fn yes(_: &Env, _: &[Option<String>]) -> Option<String> {
    Some("true".into())
}

fn null(_: &Env, _: &[Option<String>]) -> Option<String> {
    None
}

fn zero(_: &Env, _: &[Option<String>]) -> Option<String> {
    Some("0".into())
}

/// The owner of everything: the bootstrap role, as PostgreSQL's OID 10.
pub const OWNER_NAME: &str = "backstop";

fn functions() -> Vec<(&'static str, DataType, Body)> {
    use DataType::{Boolean, Int64, Utf8};
    let list = DataType::List(Arc::new(Field::new("item", Utf8, true)));
    vec![
        ("format_type", Utf8, |_, a| {
            let t = pg::type_by_oid(oid(a.first()?)?)?;
            Some(t.display.to_string())
        }),
        ("pg_get_userbyid", Utf8, |_, a| {
            Some(if oid(a.first()?)? == OWNER_OID {
                OWNER_NAME.to_string()
            } else {
                "unknown (OID)".to_string()
            })
        }),
        ("obj_description", Utf8, |env, a| {
            let object = oid(a.first()?)?;
            if let Some((schema, name)) = env.relation(object) {
                return pg::describe(&schema, &name);
            }
            if let Some((schema, _)) = pg::namespaces().into_iter().find(|(_, oid)| *oid == object)
            {
                return pg::describe_schema(schema).map(str::to_string);
            }
            super::functions::described()
                .into_iter()
                .find(|f| f.oid == object)
                .map(|f| f.description.to_string())
        }),
        ("col_description", Utf8, null),
        ("shobj_description", Utf8, null),
        ("pg_get_expr", Utf8, null),
        ("pg_table_is_visible", Boolean, |env, a| {
            let (schema, _) = env.relation(oid(a.first()?)?)?;
            Some((schema == VIEW_SCHEMA || schema == PG_CATALOG || schema == "public").to_string())
        }),
        ("pg_type_is_visible", Boolean, yes),
        ("pg_function_is_visible", Boolean, yes),
        // Reading views is every role's right; what changes anything is checked per statement.
        ("has_table_privilege", Boolean, yes),
        ("has_schema_privilege", Boolean, yes),
        ("has_database_privilege", Boolean, yes),
        ("has_any_column_privilege", Boolean, yes),
        ("has_column_privilege", Boolean, yes),
        ("pg_encoding_to_char", Utf8, |_, _| Some("UTF8".into())),
        ("current_schema", Utf8, |_, _| Some(VIEW_SCHEMA.into())),
        ("current_schemas", list.clone(), |_, _| {
            Some(format!("{PG_CATALOG},{VIEW_SCHEMA}"))
        }),
        ("current_database", Utf8, |_, _| Some(CATALOG_NAME.into())),
        ("pg_get_viewdef", Utf8, |env, a| {
            env.view_definition(oid(a.first()?)?)
        }),
        ("pg_get_constraintdef", Utf8, null),
        ("pg_get_indexdef", Utf8, null),
        ("pg_get_ruledef", Utf8, null),
        ("pg_get_partkeydef", Utf8, null),
        ("pg_get_triggerdef", Utf8, null),
        ("pg_table_size", Int64, zero),
        ("pg_relation_size", Int64, zero),
        ("pg_total_relation_size", Int64, zero),
        ("pg_indexes_size", Int64, zero),
        ("pg_database_size", Int64, zero),
        ("pg_size_pretty", Utf8, |_, a| {
            let bytes: i64 = a.first()?.as_deref()?.parse().ok()?;
            Some(size_pretty(bytes))
        }),
        ("pg_get_function_result", Utf8, |_, a| {
            let f = function(oid(a.first()?)?)?;
            Some(pg::type_by_oid(f.result)?.display.to_string())
        }),
        ("pg_get_function_arguments", Utf8, function_arguments),
        (
            "pg_get_function_identity_arguments",
            Utf8,
            function_arguments,
        ),
        ("pg_is_in_recovery", Boolean, |_, _| Some("false".into())),
        ("pg_backend_pid", Int64, |_, _| {
            Some(std::process::id().to_string())
        }),
        ("quote_ident", Utf8, |_, a| {
            let name = a.first()?.as_deref()?;
            let plain = name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            Some(if plain {
                name.to_string()
            } else {
                format!("\"{}\"", name.replace('"', "\"\""))
            })
        }),
        ("txid_current", Int64, |_, _| Some("1".into())),
        // `parse_ident('a.b')` is `{a,b}`: quoted parts keep their case and dots.
        ("parse_ident", list, |_, a| {
            Some(parse_ident(a.first()?.as_deref()?).join(","))
        }),
        ("current_setting", Utf8, |_, a| {
            match a.first()?.as_deref()?.to_ascii_lowercase().as_str() {
                "search_path" => Some(VIEW_SCHEMA.into()),
                "server_version" => Some("16.6".into()),
                "server_version_num" => Some("160006".into()),
                "server_encoding" | "client_encoding" => Some("UTF8".into()),
                "datestyle" => Some("ISO, MDY".into()),
                "timezone" => Some("UTC".into()),
                "standard_conforming_strings" => Some("on".into()),
                _ => None,
            }
        }),
        // `information_schema._pg_expandarray(indkey)`, as pgjdbc's getPrimaryKeys reads index
        // keys. No relation of backstop has an index (pg_index is empty), so it never meets a
        // row; it plans, and the answer is "no primary key".
        (
            "_pg_expandarray",
            DataType::Struct(
                vec![Field::new("x", Int64, true), Field::new("n", Int64, true)].into(),
            ),
            null,
        ),
    ]
}

fn function(oid: i64) -> Option<super::functions::Described> {
    super::functions::described()
        .into_iter()
        .find(|f| f.oid == oid)
}

fn function_arguments(_: &Env, a: &[Option<String>]) -> Option<String> {
    let f = function(oid(a.first()?)?)?;
    Some(
        f.args
            .iter()
            .filter_map(|t| pg::type_by_oid(*t).map(|t| t.display))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// The parts of a qualified name: unquoted parts folded to lower case, quoted ones as written.
fn parse_ident(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.extend(c.to_lowercase()),
        }
    }
    parts.push(current);
    parts
}

/// PostgreSQL's `pg_size_pretty`: bytes up to 10 kB, then kB, MB, GB, TB rounded.
fn size_pretty(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes.abs() < 10 * 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value.abs() >= 10.0 * 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", value.round() as i64, UNITS[unit])
}

/// `current_user` and `session_user` of one session: its user's name.
pub fn session_user(name: &str) -> ScalarUDF {
    let value = datafusion::common::ScalarValue::Utf8(Some(name.to_string()));
    datafusion::logical_expr::create_udf(
        super::pg_rewrite::SESSION_USER_FUNCTION,
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
    )
}

/// Every catalog function, over `catalogs`.
pub fn all(catalogs: Arc<dyn CatalogProviderList>) -> Vec<ScalarUDF> {
    let env = Env { catalogs };
    functions()
        .into_iter()
        .map(|(name, returns, body)| {
            ScalarUDF::new_from_impl(PgFunction {
                name,
                returns,
                body,
                env: env.clone(),
                signature: Signature::one_of(
                    vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                    Volatility::Stable,
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{parse_ident, size_pretty};

    #[test]
    fn identifiers_split_like_postgres() {
        assert_eq!(
            parse_ident("oceanbase.CDB_OB_BACKUP_JOBS"),
            ["oceanbase", "cdb_ob_backup_jobs"]
        );
        assert_eq!(parse_ident(r#""My Schema"."a.b""#), ["My Schema", "a.b"]);
    }

    #[test]
    fn sizes_read_like_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10_239), "10239 bytes");
        assert_eq!(size_pretty(10_240), "10 kB");
        assert_eq!(size_pretty(5 << 30), "5120 MB");
    }
}
