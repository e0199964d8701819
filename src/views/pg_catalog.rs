//! `pg_catalog`: PostgreSQL's system tables, as GUI clients and drivers read them (pgjdbc's
//! `DatabaseMetaData`, DBeaver, pgAdmin, Grafana's query builder, psql).
//!
//! Every table is computed when a query reads it, from what the query catalog holds at that
//! moment: the schemas, the views and base tables with their columns and real types, the
//! users, the parameters. Nothing here is stored; the rows say what backstop is. Every relation
//! is a view (`relkind = 'v'`): the base tables under `backstop` are read-only views of the
//! catalog too, so no relation has indexes, constraints or defaults to list.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, ListBuilder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::{CatalogProviderList, MemorySchemaProvider, SchemaProvider, Session};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use super::{BASE_SCHEMA, CATALOG_NAME, VIEW_SCHEMA};
use crate::catalog::Catalog;

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// Fixed OIDs, as PostgreSQL numbers them where it has them.
pub const PG_CATALOG_OID: i64 = 11;
pub const PUBLIC_OID: i64 = 2200;
pub const INFORMATION_SCHEMA_OID: i64 = 13_000;
pub const BACKSTOP_NAMESPACE_OID: i64 = 16_380;
pub const OCEANBASE_NAMESPACE_OID: i64 = 16_381;
/// The one database, `backstop`, and its owner, the bootstrap user.
pub const DATABASE_OID: i64 = 16_382;
pub const OWNER_OID: i64 = 10;
/// `pg_class`'s own OID, which `'pg_class'::regclass` stands for in `pg_description` joins.
pub const PG_CLASS_OID: i64 = 1259;
pub const PG_PROC_OID: i64 = 1255;
pub const PG_NAMESPACE_OID: i64 = 2615;

/// The system tables whose OIDs clients write as constants (`classoid = 1259`).
const FIXED_OIDS: &[(&str, i64)] = &[
    ("pg_class", PG_CLASS_OID),
    ("pg_proc", PG_PROC_OID),
    ("pg_namespace", PG_NAMESPACE_OID),
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_constraint", 2606),
    ("pg_database", 1262),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_rewrite", 2618),
    ("pg_trigger", 2620),
    ("pg_inherits", 2611),
    ("pg_tablespace", 1213),
    ("pg_extension", 3079),
    ("pg_collation", 3456),
    ("pg_auth_members", 1261),
];

/// The schemas clients see, with their OIDs.
pub fn namespaces() -> Vec<(&'static str, i64)> {
    vec![
        (PG_CATALOG, PG_CATALOG_OID),
        ("public", PUBLIC_OID),
        (INFORMATION_SCHEMA, INFORMATION_SCHEMA_OID),
        (BASE_SCHEMA, BACKSTOP_NAMESPACE_OID),
        (VIEW_SCHEMA, OCEANBASE_NAMESPACE_OID),
    ]
}

pub fn namespace_oid(name: &str) -> Option<i64> {
    namespaces()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, oid)| oid)
}

/// A stable OID for a relation, derived from its qualified name, above PostgreSQL's reserved
/// range and below 2^31 (drivers read OIDs as signed integers).
pub fn relation_oid(schema: &str, name: &str) -> i64 {
    if schema == PG_CATALOG
        && let Some((_, oid)) = FIXED_OIDS.iter().find(|(n, _)| *n == name)
    {
        return *oid;
    }
    let hash = blake3::hash(format!("{schema}.{name}").as_bytes());
    let bytes: [u8; 4] = hash.as_bytes()[..4].try_into().expect("4 bytes");
    16_384 + i64::from(u32::from_le_bytes(bytes) % 1_000_000_000)
}

/// A PostgreSQL type as backstop sends it: OID, name, length, category.
#[derive(Debug, Clone, Copy)]
pub struct PgType {
    pub oid: i64,
    pub name: &'static str,
    /// What `format_type` prints.
    pub display: &'static str,
    pub len: i64,
    pub category: &'static str,
    /// Its array type's OID (0 for arrays themselves).
    pub array: i64,
    /// For an array, the element type's OID.
    pub elem: i64,
}

const fn ty(
    oid: i64,
    name: &'static str,
    display: &'static str,
    len: i64,
    category: &'static str,
    array: i64,
    elem: i64,
) -> PgType {
    PgType {
        oid,
        name,
        display,
        len,
        category,
        array,
        elem,
    }
}

/// Every type a column or a function of backstop can have, and the ones drivers look up by
/// name at connect.
pub const TYPES: &[PgType] = &[
    ty(16, "bool", "boolean", 1, "B", 1000, 0),
    ty(17, "bytea", "bytea", -1, "U", 1001, 0),
    ty(18, "char", "\"char\"", 1, "Z", 1002, 0),
    ty(19, "name", "name", 64, "S", 1003, 0),
    ty(20, "int8", "bigint", 8, "N", 1016, 0),
    ty(21, "int2", "smallint", 2, "N", 1005, 0),
    ty(23, "int4", "integer", 4, "N", 1007, 0),
    ty(25, "text", "text", -1, "S", 1009, 0),
    ty(26, "oid", "oid", 4, "N", 1028, 0),
    ty(700, "float4", "real", 4, "N", 1021, 0),
    ty(701, "float8", "double precision", 8, "N", 1022, 0),
    ty(1043, "varchar", "character varying", -1, "S", 1015, 0),
    ty(1082, "date", "date", 4, "D", 1182, 0),
    ty(
        1114,
        "timestamp",
        "timestamp without time zone",
        8,
        "D",
        1115,
        0,
    ),
    ty(
        1184,
        "timestamptz",
        "timestamp with time zone",
        8,
        "D",
        1185,
        0,
    ),
    ty(1700, "numeric", "numeric", -1, "N", 1231, 0),
    ty(2205, "regclass", "regclass", 4, "N", 2210, 0),
    ty(1000, "_bool", "boolean[]", -1, "A", 0, 16),
    ty(1001, "_bytea", "bytea[]", -1, "A", 0, 17),
    ty(1002, "_char", "\"char\"[]", -1, "A", 0, 18),
    ty(1003, "_name", "name[]", -1, "A", 0, 19),
    ty(1005, "_int2", "smallint[]", -1, "A", 0, 21),
    ty(1007, "_int4", "integer[]", -1, "A", 0, 23),
    ty(1009, "_text", "text[]", -1, "A", 0, 25),
    ty(1015, "_varchar", "character varying[]", -1, "A", 0, 1043),
    ty(1016, "_int8", "bigint[]", -1, "A", 0, 20),
    ty(1021, "_float4", "real[]", -1, "A", 0, 700),
    ty(1022, "_float8", "double precision[]", -1, "A", 0, 701),
    ty(1028, "_oid", "oid[]", -1, "A", 0, 26),
    ty(
        1115,
        "_timestamp",
        "timestamp without time zone[]",
        -1,
        "A",
        0,
        1114,
    ),
    ty(1182, "_date", "date[]", -1, "A", 0, 1082),
    ty(
        1185,
        "_timestamptz",
        "timestamp with time zone[]",
        -1,
        "A",
        0,
        1184,
    ),
    ty(1231, "_numeric", "numeric[]", -1, "A", 0, 1700),
    ty(2210, "_regclass", "regclass[]", -1, "A", 0, 2205),
];

pub fn type_by_oid(oid: i64) -> Option<&'static PgType> {
    TYPES.iter().find(|t| t.oid == oid)
}

pub fn type_by_name(name: &str) -> Option<&'static PgType> {
    let name = name.trim().trim_start_matches("pg_catalog.");
    TYPES
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(name) || t.display.eq_ignore_ascii_case(name))
}

/// The type OID a column of `dt` is sent with (the wire's choice, so metadata and results agree).
pub fn type_oid(dt: &DataType) -> i64 {
    i64::from(crate::server::encode::pg_type(dt).oid())
}

/// One relation with its columns, as the query catalog has it now.
#[derive(Debug, Clone)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub oid: i64,
    pub columns: Vec<(String, DataType)>,
    /// Its definition, for a view.
    pub definition: Option<String>,
}

/// Every relation of the query catalog, `pg_catalog`'s and `information_schema`'s included.
pub async fn relations(catalogs: &Arc<dyn CatalogProviderList>) -> Vec<Relation> {
    let mut out = Vec::new();
    let Some(catalog) = catalogs.catalog(CATALOG_NAME) else {
        return out;
    };
    let mut schemas = catalog.schema_names();
    schemas.sort();
    for schema_name in schemas {
        let Some(schema) = catalog.schema(&schema_name) else {
            continue;
        };
        let mut names = schema.table_names();
        names.sort();
        for name in names {
            let Ok(Some(table)) = schema.table(&name).await else {
                continue;
            };
            out.push(Relation {
                oid: relation_oid(&schema_name, &name),
                columns: table
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), f.data_type().clone()))
                    .collect(),
                definition: table.get_table_definition().map(str::to_string),
                schema: schema_name.clone(),
                name,
            });
        }
    }
    out
}

/// A `pg_catalog` table: its schema, and how its rows are made from the current catalog.
struct SystemTable {
    schema: SchemaRef,
    rows: Box<dyn Fn(&Context) -> Vec<Vec<Cell>> + Send + Sync>,
    context: Weak<ContextSource>,
}

impl std::fmt::Debug for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemTable")
            .field("schema", &self.schema)
            .finish()
    }
}

/// What the tables are computed from.
pub struct ContextSource {
    catalogs: Arc<dyn CatalogProviderList>,
    catalog: Arc<Catalog>,
    /// The server's address, once it listens (GV$OB_PARAMETERS' SVR_IP and SVR_PORT).
    pub address: std::sync::OnceLock<std::net::SocketAddr>,
}

/// The catalog at the moment of one scan.
pub struct Context {
    pub relations: Vec<Relation>,
    pub catalog: Arc<Catalog>,
    pub address: Option<std::net::SocketAddr>,
}

/// A value of a system table row.
#[derive(Debug, Clone)]
pub enum Cell {
    Int(i64),
    Text(String),
    Bool(bool),
    Real(f64),
    /// A text array (`aclitem[]`, `text[]`, `oid[]` shown as text).
    Array(Vec<String>),
    Null,
}

pub(super) fn int(v: i64) -> Cell {
    Cell::Int(v)
}
pub(super) fn text(v: impl Into<String>) -> Cell {
    Cell::Text(v.into())
}
fn bool(v: bool) -> Cell {
    Cell::Bool(v)
}

#[derive(Clone, Copy)]
pub(super) enum Col {
    Int,
    Text,
    Bool,
    Real,
    Array,
}

fn arrow(c: Col) -> DataType {
    match c {
        Col::Int => DataType::Int64,
        Col::Text => DataType::Utf8,
        Col::Bool => DataType::Boolean,
        Col::Real => DataType::Float64,
        Col::Array => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    }
}

fn to_batch(schema: &SchemaRef, rows: &[Vec<Cell>]) -> Result<RecordBatch> {
    use datafusion::arrow::array::{BooleanArray, Float64Array, Int64Array, StringArray};
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let cells = rows.iter().map(|r| r.get(i).unwrap_or(&Cell::Null));
        let array: ArrayRef = match field.data_type() {
            DataType::Int64 => Arc::new(Int64Array::from_iter(cells.map(|c| match c {
                Cell::Int(v) => Some(*v),
                _ => None,
            }))),
            DataType::Boolean => Arc::new(BooleanArray::from_iter(cells.map(|c| match c {
                Cell::Bool(v) => Some(*v),
                _ => None,
            }))),
            DataType::Float64 => Arc::new(Float64Array::from_iter(cells.map(|c| match c {
                Cell::Real(v) => Some(*v),
                _ => None,
            }))),
            DataType::List(_) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for c in cells {
                    match c {
                        Cell::Array(items) => {
                            for item in items {
                                b.values().append_value(item);
                            }
                            b.append(true);
                        }
                        _ => b.append(false),
                    }
                }
                Arc::new(b.finish())
            }
            _ => Arc::new(StringArray::from_iter(cells.map(|c| match c {
                Cell::Text(v) => Some(v.clone()),
                Cell::Int(v) => Some(v.to_string()),
                _ => None,
            }))),
        };
        arrays.push(array);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(DataFusionError::from)
}

#[async_trait]
impl TableProvider for SystemTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let source = self
            .context
            .upgrade()
            .ok_or_else(|| DataFusionError::Internal("the query catalog is closed".into()))?;
        let context = Context {
            relations: relations(&source.catalogs).await,
            catalog: source.catalog.clone(),
            address: source.address.get().copied(),
        };
        let batch = to_batch(&self.schema, &(self.rows)(&context))?;
        let config =
            MemorySourceConfig::try_new(&[vec![batch]], self.schema.clone(), projection.cloned())?
                .with_limit(limit);
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(config))
    }
}

/// The system schemas computed at every scan, over `catalogs`.
pub struct SystemSchemas {
    pub pg_catalog: Arc<MemorySchemaProvider>,
    pub information_schema: Arc<MemorySchemaProvider>,
    /// `backstop.parameter_setting`, which GV$OB_PARAMETERS and SHOW PARAMETERS read.
    pub parameter_setting: Arc<dyn datafusion::catalog::TableProvider>,
    /// What the tables read; it must live as long as they are used (they hold it weakly, as
    /// it holds the catalog list that holds them).
    pub source: Arc<ContextSource>,
}

pub fn schemas(
    catalogs: Arc<dyn CatalogProviderList>,
    catalog: Arc<Catalog>,
) -> Result<SystemSchemas> {
    let source = Arc::new(ContextSource {
        catalogs,
        catalog,
        address: std::sync::OnceLock::new(),
    });
    let pg_catalog = provider(tables(), &source)?;
    let information_schema = provider(information_schema(), &source)?;
    let (name, columns, rows) = super::ob_parameters::table();
    let parameter_setting = provider(vec![(name, columns, rows)], &source)?
        .deregister_table(name)?
        .expect("just registered");
    Ok(SystemSchemas {
        pg_catalog,
        information_schema,
        parameter_setting,
        source,
    })
}

fn provider(
    tables: Vec<(&'static str, Vec<(&'static str, Col)>, Rows)>,
    source: &Arc<ContextSource>,
) -> Result<Arc<MemorySchemaProvider>> {
    let provider = Arc::new(MemorySchemaProvider::new());
    for (name, columns, rows) in tables {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, c)| Field::new(*n, arrow(*c), true))
                .collect::<Vec<_>>(),
        ));
        provider.register_table(
            name.to_string(),
            Arc::new(SystemTable {
                schema,
                rows,
                context: Arc::downgrade(source),
            }),
        )?;
    }
    Ok(provider)
}

/// The SQL standard's `information_schema`, as PostgreSQL fills it: every relation is a view,
/// and every column has PostgreSQL's type name (`bigint`, `character varying`, ...).
fn information_schema() -> Vec<(&'static str, Vec<(&'static str, Col)>, Rows)> {
    use Col::{Int as I, Text as T};
    vec![
        (
            "schemata",
            vec![
                ("catalog_name", T),
                ("schema_name", T),
                ("schema_owner", T),
                ("default_character_set_catalog", T),
                ("default_character_set_schema", T),
                ("default_character_set_name", T),
                ("sql_path", T),
            ],
            Box::new(|_| {
                namespaces()
                    .into_iter()
                    .map(|(n, _)| {
                        vec![
                            text(CATALOG_NAME),
                            text(n),
                            text(super::pg_functions::OWNER_NAME),
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                        ]
                    })
                    .collect()
            }),
        ),
        (
            "tables",
            vec![
                ("table_catalog", T),
                ("table_schema", T),
                ("table_name", T),
                ("table_type", T),
                ("self_referencing_column_name", T),
                ("reference_generation", T),
                ("user_defined_type_catalog", T),
                ("user_defined_type_schema", T),
                ("user_defined_type_name", T),
                ("is_insertable_into", T),
                ("is_typed", T),
                ("commit_action", T),
            ],
            Box::new(|ctx| {
                ctx.relations
                    .iter()
                    .map(|r| {
                        vec![
                            text(CATALOG_NAME),
                            text(&r.schema),
                            text(&r.name),
                            text("VIEW"),
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            text("NO"),
                            text("NO"),
                            Cell::Null,
                        ]
                    })
                    .collect()
            }),
        ),
        (
            "views",
            vec![
                ("table_catalog", T),
                ("table_schema", T),
                ("table_name", T),
                ("view_definition", T),
                ("check_option", T),
                ("is_updatable", T),
                ("is_insertable_into", T),
                ("is_trigger_updatable", T),
                ("is_trigger_deletable", T),
                ("is_trigger_insertable_into", T),
            ],
            Box::new(|ctx| {
                ctx.relations
                    .iter()
                    .map(|r| {
                        let mut row = vec![
                            text(CATALOG_NAME),
                            text(&r.schema),
                            text(&r.name),
                            r.definition.clone().map_or(Cell::Null, text),
                            text("NONE"),
                        ];
                        row.extend((0..5).map(|_| text("NO")));
                        row
                    })
                    .collect()
            }),
        ),
        (
            "columns",
            vec![
                ("table_catalog", T),
                ("table_schema", T),
                ("table_name", T),
                ("column_name", T),
                ("ordinal_position", I),
                ("column_default", T),
                ("is_nullable", T),
                ("data_type", T),
                ("character_maximum_length", I),
                ("character_octet_length", I),
                ("numeric_precision", I),
                ("numeric_precision_radix", I),
                ("numeric_scale", I),
                ("datetime_precision", I),
                ("udt_catalog", T),
                ("udt_schema", T),
                ("udt_name", T),
                ("dtd_identifier", T),
                ("is_identity", T),
                ("is_generated", T),
                ("is_updatable", T),
            ],
            Box::new(|ctx| {
                let mut rows = Vec::new();
                for r in &ctx.relations {
                    for (i, (name, dt)) in r.columns.iter().enumerate() {
                        let t = type_by_oid(type_oid(dt));
                        let (precision, radix) = match t.map(|t| t.name) {
                            Some("int8") => (Cell::Int(64), Cell::Int(2)),
                            Some("int4") => (Cell::Int(32), Cell::Int(2)),
                            Some("int2") => (Cell::Int(16), Cell::Int(2)),
                            Some("float8") => (Cell::Int(53), Cell::Int(2)),
                            Some("float4") => (Cell::Int(24), Cell::Int(2)),
                            _ => (Cell::Null, Cell::Null),
                        };
                        let datetime = if t.is_some_and(|t| t.category == "D") {
                            Cell::Int(6)
                        } else {
                            Cell::Null
                        };
                        rows.push(vec![
                            text(CATALOG_NAME),
                            text(&r.schema),
                            text(&r.name),
                            text(name),
                            int(i as i64 + 1),
                            Cell::Null,
                            text("YES"),
                            text(t.map_or("text", |t| t.display)),
                            Cell::Null,
                            if t.is_some_and(|t| t.category == "S") {
                                Cell::Int(1_073_741_824)
                            } else {
                                Cell::Null
                            },
                            precision,
                            radix,
                            if t.is_some_and(|t| matches!(t.name, "int8" | "int4" | "int2")) {
                                Cell::Int(0)
                            } else {
                                Cell::Null
                            },
                            datetime,
                            text(CATALOG_NAME),
                            text(PG_CATALOG),
                            text(t.map_or("text", |t| t.name)),
                            text((i + 1).to_string()),
                            text("NO"),
                            text("NEVER"),
                            text("NO"),
                        ]);
                    }
                }
                rows
            }),
        ),
        (
            "routines",
            vec![
                ("specific_catalog", T),
                ("specific_schema", T),
                ("specific_name", T),
                ("routine_catalog", T),
                ("routine_schema", T),
                ("routine_name", T),
                ("routine_type", T),
                ("data_type", T),
            ],
            Box::new(|_| {
                super::functions::described()
                    .into_iter()
                    .map(|f| {
                        let result = type_by_oid(f.result).map_or("text", |t| t.display);
                        vec![
                            text(CATALOG_NAME),
                            text("public"),
                            text(format!("{}_{}", f.name, f.oid)),
                            text(CATALOG_NAME),
                            text("public"),
                            text(f.name),
                            text("FUNCTION"),
                            text(result),
                        ]
                    })
                    .collect()
            }),
        ),
        (
            "table_constraints",
            vec![
                ("constraint_catalog", T),
                ("constraint_schema", T),
                ("constraint_name", T),
                ("table_catalog", T),
                ("table_schema", T),
                ("table_name", T),
                ("constraint_type", T),
                ("is_deferrable", T),
                ("initially_deferred", T),
                ("enforced", T),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "key_column_usage",
            vec![
                ("constraint_catalog", T),
                ("constraint_schema", T),
                ("constraint_name", T),
                ("table_catalog", T),
                ("table_schema", T),
                ("table_name", T),
                ("column_name", T),
                ("ordinal_position", I),
                ("position_in_unique_constraint", I),
            ],
            Box::new(|_| Vec::new()),
        ),
    ]
}

pub(super) type Rows = Box<dyn Fn(&Context) -> Vec<Vec<Cell>> + Send + Sync>;

fn tables() -> Vec<(&'static str, Vec<(&'static str, Col)>, Rows)> {
    use Col::{Array as A, Bool as B, Int as I, Real as R, Text as T};
    vec![
        (
            "pg_namespace",
            vec![("oid", I), ("nspname", T), ("nspowner", I), ("nspacl", A)],
            Box::new(|_| {
                namespaces()
                    .into_iter()
                    .map(|(n, oid)| vec![int(oid), text(n), int(OWNER_OID), Cell::Null])
                    .collect()
            }),
        ),
        (
            "pg_class",
            vec![
                ("oid", I),
                ("relname", T),
                ("relnamespace", I),
                ("reltype", I),
                ("reloftype", I),
                ("relowner", I),
                ("relam", I),
                ("relfilenode", I),
                ("reltablespace", I),
                ("relpages", I),
                ("reltuples", R),
                ("relallvisible", I),
                ("reltoastrelid", I),
                ("relhasindex", B),
                ("relisshared", B),
                ("relpersistence", T),
                ("relkind", T),
                ("relnatts", I),
                ("relchecks", I),
                ("relhasrules", B),
                ("relhastriggers", B),
                ("relhassubclass", B),
                ("relrowsecurity", B),
                ("relforcerowsecurity", B),
                ("relispopulated", B),
                ("relreplident", T),
                ("relispartition", B),
                ("relrewrite", I),
                ("relfrozenxid", I),
                ("relminmxid", I),
                ("relacl", A),
                ("reloptions", A),
                ("relpartbound", T),
            ],
            Box::new(|ctx| {
                ctx.relations
                    .iter()
                    .map(|r| class_row(r.oid, &r.name, &r.schema, r.columns.len()))
                    .collect()
            }),
        ),
        (
            "pg_attribute",
            vec![
                ("attrelid", I),
                ("attname", T),
                ("atttypid", I),
                ("attstattarget", I),
                ("attlen", I),
                ("attnum", I),
                ("attndims", I),
                ("attcacheoff", I),
                ("atttypmod", I),
                ("attbyval", B),
                ("attalign", T),
                ("attstorage", T),
                ("attcompression", T),
                ("attnotnull", B),
                ("atthasdef", B),
                ("atthasmissing", B),
                ("attidentity", T),
                ("attgenerated", T),
                ("attisdropped", B),
                ("attislocal", B),
                ("attinhcount", I),
                ("attcollation", I),
                ("attacl", A),
                ("attoptions", A),
                ("attfdwoptions", A),
            ],
            Box::new(|ctx| {
                let mut rows = Vec::new();
                for r in &ctx.relations {
                    for (i, (name, dt)) in r.columns.iter().enumerate() {
                        let oid = type_oid(dt);
                        let t = type_by_oid(oid);
                        rows.push(vec![
                            int(r.oid),
                            text(name),
                            int(oid),
                            int(-1),
                            int(t.map_or(-1, |t| t.len)),
                            int(i as i64 + 1),
                            int(0),
                            int(-1),
                            int(-1),
                            bool(t.is_some_and(|t| t.len > 0 && t.len <= 8)),
                            text("i"),
                            text(if t.is_some_and(|t| t.len > 0) {
                                "p"
                            } else {
                                "x"
                            }),
                            text(""),
                            bool(false),
                            bool(false),
                            bool(false),
                            text(""),
                            text(""),
                            bool(false),
                            bool(true),
                            int(0),
                            int(if t.is_some_and(|t| t.category == "S") {
                                100
                            } else {
                                0
                            }),
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                        ]);
                    }
                }
                rows
            }),
        ),
        (
            "pg_type",
            vec![
                ("oid", I),
                ("typname", T),
                ("typnamespace", I),
                ("typowner", I),
                ("typlen", I),
                ("typbyval", B),
                ("typtype", T),
                ("typcategory", T),
                ("typispreferred", B),
                ("typisdefined", B),
                ("typdelim", T),
                ("typrelid", I),
                ("typsubscript", T),
                ("typelem", I),
                ("typarray", I),
                ("typinput", T),
                ("typoutput", T),
                ("typreceive", T),
                ("typsend", T),
                ("typmodin", T),
                ("typmodout", T),
                ("typanalyze", T),
                ("typalign", T),
                ("typstorage", T),
                ("typnotnull", B),
                ("typbasetype", I),
                ("typtypmod", I),
                ("typndims", I),
                ("typcollation", I),
                ("typdefaultbin", T),
                ("typdefault", T),
                ("typacl", A),
            ],
            Box::new(|_| {
                TYPES
                    .iter()
                    .map(|t| {
                        let io = t.name.trim_start_matches('_');
                        let array = t.category == "A";
                        vec![
                            int(t.oid),
                            text(t.name),
                            int(PG_CATALOG_OID),
                            int(OWNER_OID),
                            int(t.len),
                            bool(t.len > 0 && t.len <= 8),
                            text("b"),
                            text(t.category),
                            bool(matches!(
                                t.name,
                                "bool" | "float8" | "text" | "timestamptz" | "oid"
                            )),
                            bool(true),
                            text(","),
                            int(0),
                            text(if array {
                                "array_subscript_handler"
                            } else {
                                "-"
                            }),
                            int(t.elem),
                            int(t.array),
                            text(if array {
                                "array_in".into()
                            } else {
                                format!("{io}in")
                            }),
                            text(if array {
                                "array_out".into()
                            } else {
                                format!("{io}out")
                            }),
                            text(if array {
                                "array_recv".into()
                            } else {
                                format!("{io}recv")
                            }),
                            text(if array {
                                "array_send".into()
                            } else {
                                format!("{io}send")
                            }),
                            text("-"),
                            text("-"),
                            text("-"),
                            text(if t.len == 8 { "d" } else { "i" }),
                            text(if t.len > 0 { "p" } else { "x" }),
                            bool(false),
                            int(0),
                            int(-1),
                            int(0),
                            int(if matches!(t.name, "text" | "varchar" | "name") {
                                100
                            } else {
                                0
                            }),
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                        ]
                    })
                    .collect()
            }),
        ),
        (
            "pg_proc",
            vec![
                ("oid", I),
                ("proname", T),
                ("pronamespace", I),
                ("proowner", I),
                ("prolang", I),
                ("procost", R),
                ("prorows", R),
                ("provariadic", I),
                ("prosupport", T),
                ("prokind", T),
                ("prosecdef", B),
                ("proleakproof", B),
                ("proisstrict", B),
                ("proretset", B),
                ("provolatile", T),
                ("proparallel", T),
                ("pronargs", I),
                ("pronargdefaults", I),
                ("prorettype", I),
                ("proargtypes", T),
                ("proallargtypes", A),
                ("proargmodes", A),
                ("proargnames", A),
                ("proargdefaults", T),
                ("protrftypes", A),
                ("prosrc", T),
                ("probin", T),
                ("prosqlbody", T),
                ("proconfig", A),
                ("proacl", A),
            ],
            Box::new(|_| {
                super::functions::described()
                    .into_iter()
                    .map(|f| {
                        vec![
                            int(f.oid),
                            text(f.name),
                            int(PUBLIC_OID),
                            int(OWNER_OID),
                            int(12),
                            Cell::Real(1.0),
                            Cell::Real(0.0),
                            int(0),
                            text("-"),
                            text("f"),
                            bool(false),
                            bool(false),
                            bool(true),
                            bool(false),
                            text("i"),
                            text("s"),
                            int(f.args.len() as i64),
                            int(0),
                            int(f.result),
                            text(
                                f.args
                                    .iter()
                                    .map(|a| a.to_string())
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            text(f.name),
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                            Cell::Null,
                        ]
                    })
                    .collect()
            }),
        ),
        (
            "pg_description",
            vec![
                ("objoid", I),
                ("classoid", I),
                ("objsubid", I),
                ("description", T),
            ],
            Box::new(|ctx| {
                let mut rows: Vec<Vec<Cell>> = ctx
                    .relations
                    .iter()
                    .filter_map(|r| {
                        describe(&r.schema, &r.name)
                            .map(|d| vec![int(r.oid), int(PG_CLASS_OID), int(0), text(d)])
                    })
                    .collect();
                rows.extend(namespaces().into_iter().filter_map(|(n, oid)| {
                    describe_schema(n)
                        .map(|d| vec![int(oid), int(PG_NAMESPACE_OID), int(0), text(d)])
                }));
                rows.extend(
                    super::functions::described()
                        .into_iter()
                        .map(|f| vec![int(f.oid), int(PG_PROC_OID), int(0), text(f.description)]),
                );
                rows
            }),
        ),
        (
            "pg_database",
            vec![
                ("oid", I),
                ("datname", T),
                ("datdba", I),
                ("encoding", I),
                ("datlocprovider", T),
                ("datistemplate", B),
                ("datallowconn", B),
                ("datconnlimit", I),
                ("datfrozenxid", I),
                ("datminmxid", I),
                ("dattablespace", I),
                ("datcollate", T),
                ("datctype", T),
                ("daticulocale", T),
                ("datcollversion", T),
                ("datacl", A),
            ],
            Box::new(|_| {
                vec![vec![
                    int(DATABASE_OID),
                    text(CATALOG_NAME),
                    int(OWNER_OID),
                    int(6),
                    text("c"),
                    bool(false),
                    bool(true),
                    int(-1),
                    int(0),
                    int(1),
                    int(1663),
                    text("C.UTF-8"),
                    text("C.UTF-8"),
                    Cell::Null,
                    Cell::Null,
                    Cell::Null,
                ]]
            }),
        ),
        (
            "pg_roles",
            vec![
                ("rolname", T),
                ("rolsuper", B),
                ("rolinherit", B),
                ("rolcreaterole", B),
                ("rolcreatedb", B),
                ("rolcanlogin", B),
                ("rolreplication", B),
                ("rolconnlimit", I),
                ("rolpassword", T),
                ("rolvaliduntil", T),
                ("rolbypassrls", B),
                ("rolconfig", A),
                ("oid", I),
            ],
            Box::new(|ctx| roles(ctx)),
        ),
        (
            "pg_user",
            vec![
                ("usename", T),
                ("usesysid", I),
                ("usecreatedb", B),
                ("usesuper", B),
                ("userepl", B),
                ("usebypassrls", B),
                ("passwd", T),
                ("valuntil", T),
                ("useconfig", A),
            ],
            Box::new(|ctx| {
                roles(ctx)
                    .into_iter()
                    .map(|r| {
                        vec![
                            r[0].clone(),
                            r[12].clone(),
                            r[4].clone(),
                            r[1].clone(),
                            r[6].clone(),
                            r[10].clone(),
                            text("********"),
                            Cell::Null,
                            Cell::Null,
                        ]
                    })
                    .collect()
            }),
        ),
        (
            "pg_settings",
            vec![
                ("name", T),
                ("setting", T),
                ("unit", T),
                ("category", T),
                ("short_desc", T),
                ("extra_desc", T),
                ("context", T),
                ("vartype", T),
                ("source", T),
                ("min_val", T),
                ("max_val", T),
                ("enumvals", A),
                ("boot_val", T),
                ("reset_val", T),
                ("sourcefile", T),
                ("sourceline", I),
                ("pending_restart", B),
            ],
            Box::new(|ctx| settings(ctx)),
        ),
        (
            "pg_index",
            vec![
                ("indexrelid", I),
                ("indrelid", I),
                ("indnatts", I),
                ("indnkeyatts", I),
                ("indisunique", B),
                ("indnullsnotdistinct", B),
                ("indisprimary", B),
                ("indisexclusion", B),
                ("indimmediate", B),
                ("indisclustered", B),
                ("indisvalid", B),
                ("indcheckxmin", B),
                ("indisready", B),
                ("indislive", B),
                ("indisreplident", B),
                ("indkey", T),
                ("indcollation", T),
                ("indclass", T),
                ("indoption", T),
                ("indexprs", T),
                ("indpred", T),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_constraint",
            vec![
                ("oid", I),
                ("conname", T),
                ("connamespace", I),
                ("contype", T),
                ("condeferrable", B),
                ("condeferred", B),
                ("convalidated", B),
                ("conrelid", I),
                ("contypid", I),
                ("conindid", I),
                ("conparentid", I),
                ("confrelid", I),
                ("confupdtype", T),
                ("confdeltype", T),
                ("confmatchtype", T),
                ("conislocal", B),
                ("coninhcount", I),
                ("connoinherit", B),
                ("conkey", A),
                ("confkey", A),
                ("conbin", T),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_attrdef",
            vec![("oid", I), ("adrelid", I), ("adnum", I), ("adbin", T)],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_am",
            vec![("oid", I), ("amname", T), ("amhandler", T), ("amtype", T)],
            Box::new(|_| vec![vec![int(403), text("btree"), text("bthandler"), text("i")]]),
        ),
        (
            "pg_inherits",
            vec![
                ("inhrelid", I),
                ("inhparent", I),
                ("inhseqno", I),
                ("inhdetachpending", B),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_rewrite",
            vec![
                ("oid", I),
                ("rulename", T),
                ("ev_class", I),
                ("ev_type", T),
                ("ev_enabled", T),
                ("is_instead", B),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_trigger",
            vec![
                ("oid", I),
                ("tgrelid", I),
                ("tgname", T),
                ("tgisinternal", B),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_tablespace",
            vec![
                ("oid", I),
                ("spcname", T),
                ("spcowner", I),
                ("spcacl", A),
                ("spcoptions", A),
            ],
            Box::new(|_| {
                vec![vec![
                    int(1663),
                    text("pg_default"),
                    int(OWNER_OID),
                    Cell::Null,
                    Cell::Null,
                ]]
            }),
        ),
        (
            "pg_extension",
            vec![
                ("oid", I),
                ("extname", T),
                ("extowner", I),
                ("extnamespace", I),
                ("extrelocatable", B),
                ("extversion", T),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_collation",
            vec![
                ("oid", I),
                ("collname", T),
                ("collnamespace", I),
                ("collprovider", T),
            ],
            Box::new(|_| {
                vec![vec![
                    int(100),
                    text("default"),
                    int(PG_CATALOG_OID),
                    text("d"),
                ]]
            }),
        ),
        (
            "pg_auth_members",
            vec![
                ("roleid", I),
                ("member", I),
                ("grantor", I),
                ("admin_option", B),
            ],
            Box::new(|_| Vec::new()),
        ),
        (
            "pg_stat_activity",
            vec![
                ("datid", I),
                ("datname", T),
                ("pid", I),
                ("usename", T),
                ("application_name", T),
                ("client_addr", T),
                ("state", T),
                ("query", T),
            ],
            Box::new(|_| Vec::new()),
        ),
    ]
}

fn class_row(oid: i64, name: &str, schema: &str, natts: usize) -> Vec<Cell> {
    vec![
        int(oid),
        text(name),
        int(namespace_oid(schema).unwrap_or(PUBLIC_OID)),
        int(0),
        int(0),
        int(OWNER_OID),
        int(0),
        int(0),
        int(0),
        int(0),
        Cell::Real(-1.0),
        int(0),
        int(0),
        bool(false),
        bool(false),
        text("p"),
        text("v"),
        int(natts as i64),
        int(0),
        bool(false),
        bool(false),
        bool(false),
        bool(false),
        bool(false),
        bool(true),
        text("n"),
        bool(false),
        int(0),
        int(0),
        int(0),
        Cell::Null,
        Cell::Null,
        Cell::Null,
    ]
}

/// The owner of every object (OID 10, a role no one logs in as), then backstop's users with
/// their roles: an admin is a superuser, an operator and a monitor are not.
fn roles(ctx: &Context) -> Vec<Vec<Cell>> {
    let users = ctx
        .catalog
        .read(
            "SELECT user_name, role FROM user_account ORDER BY user_name",
            &[],
        )
        .unwrap_or_default();
    let role = |name: String, oid: i64, superuser: bool, login: bool| {
        vec![
            text(name),
            bool(superuser),
            bool(true),
            bool(superuser),
            bool(false),
            bool(login),
            bool(false),
            int(-1),
            text("********"),
            Cell::Null,
            bool(superuser),
            Cell::Null,
            int(oid),
        ]
    };
    let mut rows = vec![role(
        super::pg_functions::OWNER_NAME.to_string(),
        OWNER_OID,
        true,
        false,
    )];
    rows.extend(users.iter().enumerate().map(|(i, u)| {
        role(
            u[0].as_str().unwrap_or_default().to_string(),
            16_000 + i as i64,
            u[1].as_str() == Some("admin"),
            true,
        )
    }));
    rows
}

fn settings(ctx: &Context) -> Vec<Vec<Cell>> {
    use crate::catalog::parameters::PARAMETERS;
    PARAMETERS
        .iter()
        .filter(|p| !p.name.starts_with('_'))
        .map(|p| {
            let value = ctx
                .catalog
                .parameter(crate::catalog::SYS_TENANT_ID, p.name)
                .ok()
                .flatten()
                .map(|v| crate::catalog::mask_secrets(&v));
            let default = p.default.map(str::to_string);
            vec![
                text(p.name),
                value.clone().or(default.clone()).map_or(Cell::Null, text),
                Cell::Null,
                text("backstop"),
                text(p.description),
                Cell::Null,
                text("sighup"),
                text("string"),
                text(if value.is_some() {
                    "configuration file"
                } else {
                    "default"
                }),
                Cell::Null,
                Cell::Null,
                Cell::Null,
                default.clone().map_or(Cell::Null, text),
                default.map_or(Cell::Null, text),
                Cell::Null,
                Cell::Null,
                bool(false),
            ]
        })
        .collect()
}

/// What `obj_description(oid, 'pg_class')` says of a built-in relation.
pub fn describe(schema: &str, name: &str) -> Option<String> {
    match schema {
        VIEW_SCHEMA if name.starts_with("cdb_ob_") => Some(format!(
            "OceanBase view {}: every tenant's rows",
            name.to_ascii_uppercase()
        )),
        VIEW_SCHEMA if name.starts_with("dba_ob_") => Some(format!(
            "OceanBase view {}: the session tenant's rows",
            name.to_ascii_uppercase()
        )),
        BASE_SCHEMA => Some(format!("backstop catalog table {name} (read-only)")),
        _ => None,
    }
}

pub(super) fn describe_schema(name: &str) -> Option<&'static str> {
    match name {
        VIEW_SCHEMA => Some("the OceanBase backup views (the default search path)"),
        BASE_SCHEMA => Some("the catalog's base tables, read-only"),
        "public" => Some("views users create"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_are_stable_and_in_range() {
        let a = relation_oid("oceanbase", "cdb_ob_backup_jobs");
        assert_eq!(a, relation_oid("oceanbase", "cdb_ob_backup_jobs"));
        assert!((16_384..i64::from(i32::MAX)).contains(&a));
        assert_eq!(relation_oid("pg_catalog", "pg_class"), PG_CLASS_OID);
    }

    #[test]
    fn every_wire_type_is_described() {
        for dt in [
            DataType::Boolean,
            DataType::Int64,
            DataType::Int32,
            DataType::Float64,
            DataType::Utf8,
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
            DataType::Date32,
            DataType::Binary,
        ] {
            assert!(type_by_oid(type_oid(&dt)).is_some(), "{dt}");
        }
    }
}
