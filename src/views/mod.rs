//! What queries see: the catalog's base tables under schema `backstop`, the `CDB_OB_*` views of
//! SPEC §3 defined in `sql/*.sql` under schema `oceanbase` (the default search path), a
//! `DBA_OB_*` twin of each for the session's tenant, and the views users create.
//!
//! DataFusion answers every query. The base tables read the catalog at execution time, so a row
//! the executor commits is visible to the next query.

mod base_table;
pub mod functions;
mod ob_parameters;
pub mod pg_catalog;
pub mod pg_functions;
mod pg_rewrite;
mod plan_cache;
pub mod session_tenant;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider,
};
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;

use crate::catalog::Catalog;
use crate::catalog::schema::TABLES;
pub use plan_cache::PlanCache;
use session_tenant::{SessionTenant, SessionTenantTable};

/// The name of the one DataFusion catalog; psql shows it as the database.
pub const CATALOG_NAME: &str = "backstop";
/// Where the OceanBase views live; also the default schema of every session.
pub const VIEW_SCHEMA: &str = "oceanbase";
/// Where the catalog's base tables live.
pub const BASE_SCHEMA: &str = "backstop";

/// The view definitions, compiled in so that the binary is all an installation needs.
pub const VIEW_FILES: &[(&str, &str)] = &[
    ("system.sql", include_str!("../../sql/system.sql")),
    ("backup_jobs.sql", include_str!("../../sql/backup_jobs.sql")),
    ("archivelog.sql", include_str!("../../sql/archivelog.sql")),
    (
        "backup_backup.sql",
        include_str!("../../sql/backup_backup.sql"),
    ),
    (
        "restore_validate.sql",
        include_str!("../../sql/restore_validate.sql"),
    ),
    ("delete.sql", include_str!("../../sql/delete.sql")),
    ("plans.sql", include_str!("../../sql/plans.sql")),
    ("contexts.sql", include_str!("../../sql/contexts.sql")),
];

/// A result built from text values cast to the given types, for answers that do not come from
/// a query (SHOW, psql's catalog queries, RESTORE ... PREVIEW).
pub fn rows(
    columns: &[(&str, datafusion::arrow::datatypes::DataType)],
    rows: Vec<Vec<Option<String>>>,
) -> crate::error::SqlResult<datafusion::arrow::record_batch::RecordBatch> {
    use crate::error::SqlError;
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, t)| Field::new(*n, t.clone(), true))
        .collect();
    let arrays = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            let text: StringArray = rows.iter().map(|r| r[i].clone()).collect();
            datafusion::arrow::compute::cast(&text, ty)
                .map_err(|e| SqlError::internal(e.to_string()))
        })
        .collect::<Result<Vec<ArrayRef>, SqlError>>()?;
    datafusion::arrow::record_batch::RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .map_err(|e| SqlError::internal(e.to_string()))
}

pub struct Views {
    catalog: Arc<Catalog>,
    catalogs: Arc<dyn CatalogProviderList>,
    /// Names (lower case, unqualified) of the views backstop defines; users may not drop them.
    builtin: HashSet<String>,
    /// Moves on at every `CREATE VIEW` and `DROP VIEW`, which change what query text means.
    epoch: AtomicU64,
    /// What `pg_catalog`'s tables are computed from (they hold it weakly).
    system: Arc<pg_catalog::ContextSource>,
}

impl Views {
    pub async fn open(catalog: Arc<Catalog>) -> Result<Arc<Views>> {
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        let root = Arc::new(MemoryCatalogProvider::new());
        let base = Arc::new(MemorySchemaProvider::new());
        for def in TABLES.iter().filter(|t| t.queryable) {
            base.register_table(
                def.name.to_string(),
                Arc::new(base_table::CatalogTable::new(def, catalog.clone())),
            )?;
        }
        base.register_table("session_tenant".into(), Arc::new(SessionTenantTable::new()))?;
        root.register_schema(BASE_SCHEMA, base.clone())?;
        root.register_schema(VIEW_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
        root.register_schema("public", Arc::new(MemorySchemaProvider::new()))?;
        catalogs.register_catalog(CATALOG_NAME.into(), root.clone());
        let list: Arc<dyn CatalogProviderList> = catalogs.clone();
        let system = pg_catalog::schemas(list, catalog.clone())?;
        root.register_schema(pg_catalog::PG_CATALOG, system.pg_catalog)?;
        root.register_schema(pg_catalog::INFORMATION_SCHEMA, system.information_schema)?;
        base.register_table("parameter_setting".into(), system.parameter_setting)?;
        let pg_source = system.source;

        let mut views = Views {
            catalog,
            catalogs,
            builtin: HashSet::new(),
            epoch: AtomicU64::new(0),
            system: pg_source,
        };
        let ctx = views.session();
        for (file, text) in VIEW_FILES {
            run_script(&ctx, &with_status_lists(text))
                .await
                .map_err(|e| DataFusionError::Plan(format!("in sql/{file}: {e}")))?;
        }
        derive_dba_views(&ctx).await?;
        views.builtin = views
            .schema(VIEW_SCHEMA)
            .table_names()
            .into_iter()
            .collect();
        views.replay_user_views(&ctx).await;
        Ok(Arc::new(views))
    }

    fn schema(&self, name: &str) -> Arc<dyn SchemaProvider> {
        self.catalogs
            .catalog(CATALOG_NAME)
            .and_then(|c| c.schema(name))
            .expect("schemas are registered at open")
    }

    /// A new query session over the shared catalog, for one client connection.
    pub fn session(&self) -> SessionContext {
        // The catalog's tables are small and many clients query at once: each query runs on one
        // thread, without repartitioning, and the clients share the cores.
        let config = SessionConfig::new()
            .with_target_partitions(1)
            // backstop's own information_schema (PostgreSQL's shape) is in the catalog.
            .with_information_schema(false)
            .with_default_catalog_and_schema(CATALOG_NAME, VIEW_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_extension(Arc::new(SessionTenant(crate::catalog::SYS_TENANT_ID)));
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_catalog_list(self.catalogs.clone())
            .with_default_features()
            .build();
        let ctx = SessionContext::new_with_state(state);
        for udf in functions::all()
            .into_iter()
            .chain(pg_functions::all(self.catalogs.clone()))
        {
            ctx.register_udf(udf);
        }
        ctx
    }

    /// Sets the tenant the session's `DBA_OB_*` views show.
    pub fn set_session_tenant(ctx: &SessionContext, tenant_id: i64) {
        ctx.state_ref()
            .write()
            .config_mut()
            .set_extension(Arc::new(SessionTenant(tenant_id)));
    }

    pub fn session_tenant(ctx: &SessionContext) -> i64 {
        ctx.state()
            .config()
            .get_extension::<SessionTenant>()
            .map_or(crate::catalog::SYS_TENANT_ID, |t| t.0)
    }

    /// Plans one statement that is not backstop's own. `CREATE VIEW` and `DROP VIEW` are kept
    /// in the catalog so they survive a restart; statements that would create data backstop
    /// cannot keep are refused.
    /// A session that ran the same text before gets its plan back without planning again.
    pub async fn plan(
        &self,
        ctx: &SessionContext,
        plans: &PlanCache,
        sql: &str,
    ) -> Result<LogicalPlan> {
        let epoch = self.epoch.load(Ordering::Acquire);
        if let Some(plan) = plans.plan(sql, epoch) {
            return Ok(plan);
        }
        let plan = match self.rewritten(sql)? {
            Some(statement) => ctx.state().statement_to_plan(statement).await?,
            None => ctx.state().create_logical_plan(sql).await?,
        };
        plans.keep(sql, epoch, &plan);
        match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateView(view)) => {
                self.refuse_builtin(view.name.table())?;
            }
            LogicalPlan::Ddl(DdlStatement::DropView(view)) => {
                self.refuse_builtin(view.name.table())?;
            }
            LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(_))
            | LogicalPlan::Ddl(DdlStatement::CreateExternalTable(_))
            | LogicalPlan::Ddl(DdlStatement::CreateCatalog(_))
            | LogicalPlan::Ddl(DdlStatement::CreateCatalogSchema(_))
            | LogicalPlan::Ddl(DdlStatement::DropTable(_))
            | LogicalPlan::Ddl(DdlStatement::DropCatalogSchema(_))
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_) => {
                return Err(DataFusionError::NotImplemented(
                    "backstop keeps no user tables: its data is changed by ALTER SYSTEM \
                     statements, and you can CREATE VIEW over its views"
                        .into(),
                ));
            }
            _ => {}
        }
        Ok(plan)
    }

    /// Runs a planned statement and records view definitions once they succeed.
    pub async fn execute(
        &self,
        ctx: &SessionContext,
        sql: &str,
        plan: LogicalPlan,
    ) -> Result<DataFrame> {
        let persisted = match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateView(v)) => Some((
                v.name.schema().unwrap_or(VIEW_SCHEMA).to_string(),
                v.name.table().to_string(),
                true,
            )),
            LogicalPlan::Ddl(DdlStatement::DropView(v)) => Some((
                v.name.schema().unwrap_or(VIEW_SCHEMA).to_string(),
                v.name.table().to_string(),
                false,
            )),
            _ => None,
        };
        let df = ctx.execute_logical_plan(plan).await?;
        if persisted.is_some() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        if let Some((schema, name, create)) = persisted {
            let saved = if create {
                self.catalog.save_user_view(&schema, &name, sql)
            } else {
                self.catalog.drop_user_view(&schema, &name)
            };
            saved.map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
        Ok(df)
    }

    /// Runs a query (not DDL) and collects its rows. `sql` is the text `plan` was made from;
    /// when `plan` has no bound parameters, its optimized form is kept in `plans` for the next
    /// time the session sends the same text. The tables are read again every time.
    pub async fn query(
        &self,
        ctx: &SessionContext,
        plans: &PlanCache,
        sql: &str,
        plan: &LogicalPlan,
        parameters_bound: bool,
    ) -> Result<Vec<RecordBatch>> {
        let state = ctx.state();
        let epoch = self.epoch.load(Ordering::Acquire);
        let cached = if parameters_bound {
            None
        } else {
            plans.optimized(sql, epoch)
        };
        let optimized = match cached {
            Some(optimized) => optimized,
            None => {
                let optimized = state.optimize(plan)?;
                if !parameters_bound {
                    plans.keep_optimized(sql, epoch, &optimized);
                }
                optimized
            }
        };
        let physical = state
            .query_planner()
            .create_physical_plan(&optimized, &state)
            .await?;
        datafusion::physical_plan::collect(physical, state.task_ctx()).await
    }

    /// The server's address, shown by GV$OB_PARAMETERS.
    pub fn set_address(&self, addr: std::net::SocketAddr) {
        if self.system.address.set(addr).is_err() {
            tracing::debug!(%addr, "the server's address was set already; the first stays");
        }
    }

    /// Every relation clients can see, as `pg_class` lists it.
    pub async fn relations(&self) -> Vec<pg_catalog::Relation> {
        pg_catalog::relations(&self.catalogs).await
    }

    /// `sql` with PostgreSQL's catalog spellings rewritten ([`pg_rewrite`]), when it has any.
    fn rewritten(&self, sql: &str) -> Result<Option<datafusion::sql::parser::Statement>> {
        use datafusion::sql::parser::Statement as DFStatement;
        if !pg_rewrite::wanted(sql) {
            return Ok(None);
        }
        let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
        let sql = pg_rewrite::search_path(sql);
        let Ok(mut statements) = DFParser::parse_sql_with_dialect(&sql, &dialect) else {
            // DataFusion's own parser says what is wrong.
            return Ok(None);
        };
        if statements.len() != 1 {
            return Ok(None);
        }
        let mut statement = statements.pop_front().expect("one statement");
        let DFStatement::Statement(inner) = &mut statement else {
            return Ok(None);
        };
        let catalog = self.catalogs.catalog(CATALOG_NAME);
        let exists = |schema: &str, name: &str| {
            catalog
                .as_ref()
                .and_then(|c| c.schema(schema))
                .is_some_and(|s| s.table_exist(name))
        };
        pg_rewrite::rewrite(inner, &exists);
        Ok(Some(statement))
    }

    fn refuse_builtin(&self, name: &str) -> Result<()> {
        if self.builtin.contains(&name.to_ascii_lowercase()) {
            return Err(DataFusionError::Plan(format!(
                "{name} is a built-in view of backstop and cannot be replaced or dropped"
            )));
        }
        Ok(())
    }

    async fn replay_user_views(&self, ctx: &SessionContext) {
        let saved = match self.catalog.user_views() {
            Ok(saved) => saved,
            Err(e) => {
                tracing::error!(error = %e, "cannot read user views from the catalog");
                return;
            }
        };
        for (schema, name, definition) in saved {
            if let Err(e) = ctx.sql(&definition).await.map(|_| ()) {
                tracing::warn!(view = %format!("{schema}.{name}"), error = %e,
                    "a user view no longer plans and is skipped");
            }
        }
    }
}

async fn run_script(ctx: &SessionContext, text: &str) -> Result<()> {
    let dialect = datafusion::sql::sqlparser::dialect::PostgreSqlDialect {};
    let statements = DFParser::parse_sql_with_dialect(text, &dialect)?;
    for statement in statements {
        let plan = ctx.state().statement_to_plan(statement).await?;
        ctx.execute_logical_plan(plan).await?;
    }
    Ok(())
}

/// `DBA_OB_X` is `CDB_OB_X` without its TENANT_ID column, limited to the session's tenant.
async fn derive_dba_views(ctx: &SessionContext) -> Result<()> {
    let schema = ctx
        .catalog(CATALOG_NAME)
        .and_then(|c| c.schema(VIEW_SCHEMA))
        .expect("view schema exists");
    let mut names = schema.table_names();
    names.sort();
    for cdb in names.iter().filter(|n| n.starts_with("cdb_ob_")) {
        let dba = cdb.replacen("cdb_", "dba_", 1);
        let table = schema.table(cdb).await?.expect("listed view exists");
        let fields = table.schema();
        let sql = if fields.column_with_name("tenant_id").is_some() {
            let columns: Vec<String> = fields
                .fields()
                .iter()
                .filter(|f| f.name() != "tenant_id")
                .map(|f| format!("v.{}", f.name()))
                .collect();
            format!(
                "CREATE VIEW {VIEW_SCHEMA}.{dba} AS SELECT {} FROM {VIEW_SCHEMA}.{cdb} v \
                 JOIN {BASE_SCHEMA}.session_tenant s ON v.tenant_id = s.tenant_id",
                columns.join(", ")
            )
        } else {
            format!("CREATE VIEW {VIEW_SCHEMA}.{dba} AS SELECT * FROM {VIEW_SCHEMA}.{cdb}")
        };
        run_script(ctx, &sql).await?;
    }
    Ok(())
}

/// A view file with its status placeholders (`${JOB_LIVE}` ...) replaced by the state
/// machines' word lists ([`crate::catalog::status::view_placeholders`]).
fn with_status_lists(text: &str) -> String {
    crate::catalog::status::view_placeholders()
        .into_iter()
        .fold(text.to_string(), |text, (name, words)| {
            text.replace(name, &words)
        })
}
