//! A catalog table as a DataFusion table: every query reads the catalog live.
//!
//! Rows are converted to Arrow once per catalog generation and shared by the queries that follow
//! until the next write, so a dashboard polling an unchanged history costs no SQLite reads. The
//! table evaluates the filters DataFusion pushes into it (a view's own `WHERE` among them) and
//! keeps the filtered rows for the same generation too, so the second `SELECT ... FROM
//! cdb_ob_backup_job_history` does not filter 100k rows again. Rows are kept newest first (in
//! descending primary-key order) and say so, which turns the common `ORDER BY job_id DESC LIMIT
//! n` into reading `n` rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{and, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;

use crate::catalog::jobs::TaskProgress;
use crate::catalog::progress::Figures;
use crate::catalog::schema::{ColumnType, TableDef};
use crate::catalog::{Catalog, Row, Value};

/// How many filtered results a table keeps per generation before it starts over. Each is a set
/// of Arrow arrays sharing nothing with the full batch, so the bound is on bytes as well.
const FILTERED_ENTRIES: usize = 64;
const FILTERED_BYTES: usize = 64 << 20;
/// How many single-filter results (one bit per row) a table keeps per generation.
const MASK_ENTRIES: usize = 256;

#[derive(Debug)]
pub struct CatalogTable {
    def: &'static TableDef,
    catalog: Arc<Catalog>,
    /// The in-memory figures of running work this table shows over its durable rows.
    live: Option<Live>,
    schema: SchemaRef,
    /// The order rows are kept in: descending primary key, when the key is visible.
    ordering: Option<LexOrdering>,
    cache: Mutex<Cache>,
}

/// What one catalog generation of the table looks like, read once.
#[derive(Debug, Default)]
struct Cache {
    generation: Option<u64>,
    full: Option<RecordBatch>,
    /// Which rows pass one filter, by the filter's text.
    masks: HashMap<String, BooleanArray>,
    /// Filtered rows by the text of the filters that made them.
    filtered: HashMap<String, RecordBatch>,
    filtered_bytes: usize,
}

pub fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Int => DataType::Int64,
        ColumnType::Real => DataType::Float64,
        ColumnType::Text | ColumnType::Secret => DataType::Utf8,
        ColumnType::Time => DataType::Timestamp(TimeUnit::Microsecond, None),
    }
}

impl CatalogTable {
    pub fn new(def: &'static TableDef, catalog: Arc<Catalog>) -> CatalogTable {
        let fields: Vec<Field> = def
            .visible_columns()
            .map(|c| Field::new(c.name, arrow_type(c.ty), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let ordering = newest_first(def, &schema);
        let live = match def.name {
            "task" => Some(Live::Tasks),
            "job" => Some(Live::Jobs),
            _ => None,
        };
        CatalogTable {
            def,
            catalog,
            live,
            schema,
            ordering,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// What the table's rows depend on: the catalog's writes, and for tables with live figures
    /// those figures too. Both only grow, so their sum changes whenever either does.
    fn generation(&self) -> u64 {
        let durable = self.catalog.generation();
        match self.live {
            Some(_) => durable + self.catalog.live_progress().generation(),
            None => durable,
        }
    }

    /// The rows of the current generation that pass every filter.
    fn rows(&self, state: &dyn Session, filters: &[Expr]) -> Result<RecordBatch> {
        let generation = self.generation();
        let texts: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let key = texts.join(" AND ");
        let full = {
            let mut cache = self.cache();
            if cache.generation != Some(generation) {
                *cache = Cache {
                    generation: Some(generation),
                    ..Cache::default()
                };
            }
            if let Some(hit) = cache.filtered.get(&key) {
                return Ok(hit.clone());
            }
            cache.full.clone()
        };
        let full = match full {
            Some(batch) => batch,
            None => {
                let mut rows = self
                    .catalog
                    .scan(self.def)
                    .map_err(|e| DataFusionError::External(Box::new(e)))?;
                if let Some(live) = self.live {
                    overlay(
                        self.def,
                        live,
                        &mut rows,
                        &self.catalog.live_progress().snapshot(),
                    );
                }
                let batch = to_batch(self.def, &self.schema, &rows)?;
                let mut cache = self.cache();
                if cache.generation == Some(generation) {
                    cache.full = Some(batch.clone());
                }
                batch
            }
        };
        if filters.is_empty() {
            return Ok(full);
        }
        // SQL keeps a row only where every filter is true; `and` gives null where either side is
        // null, and `filter_record_batch` drops nulls.
        let mut mask: Option<BooleanArray> = None;
        for (filter, text) in filters.iter().zip(&texts) {
            let this = self.mask(state, &full, generation, filter, text)?;
            mask = Some(match mask {
                None => this,
                Some(m) => and(&m, &this)?,
            });
        }
        let filtered = filter_record_batch(&full, &mask.expect("filters is not empty"))?;
        let mut cache = self.cache();
        if cache.generation == Some(generation) {
            let bytes = filtered.get_array_memory_size();
            if cache.filtered.len() >= FILTERED_ENTRIES
                || cache.filtered_bytes + bytes > FILTERED_BYTES
            {
                cache.filtered.clear();
                cache.filtered_bytes = 0;
            }
            cache.filtered_bytes += bytes;
            cache.filtered.insert(key, filtered.clone());
        }
        Ok(filtered)
    }

    /// Which rows of `batch` (generation `generation`) pass `filter`, remembered by its text.
    fn mask(
        &self,
        state: &dyn Session,
        batch: &RecordBatch,
        generation: u64,
        filter: &Expr,
        text: &str,
    ) -> Result<BooleanArray> {
        if let Some(hit) = self.cache().masks.get(text) {
            return Ok(hit.clone());
        }
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let expr = state.create_physical_expr(filter.clone(), &df_schema)?;
        let value = expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(mask) = value.as_any().downcast_ref::<BooleanArray>() else {
            return Err(DataFusionError::Plan(format!(
                "filter {filter} is not a boolean expression"
            )));
        };
        let mut cache = self.cache();
        if cache.generation == Some(generation) {
            if cache.masks.len() >= MASK_ENTRIES {
                cache.masks.clear();
            }
            cache.masks.insert(text.to_string(), mask.clone());
        }
        Ok(mask.clone())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().expect("table cache poisoned")
    }
}

/// Descending primary key, nulls first (SQL's default for `DESC`): the order [`Catalog::scan`]
/// returns rows in.
fn newest_first(def: &TableDef, schema: &SchemaRef) -> Option<LexOrdering> {
    let key = def.primary_key();
    let mut exprs = Vec::with_capacity(key.len());
    for name in key {
        let index = schema.index_of(name).ok()?;
        exprs.push(PhysicalSortExpr::new(
            Arc::new(Column::new(name, index)),
            SortOptions {
                descending: true,
                nulls_first: true,
            },
        ));
    }
    LexOrdering::new(exprs)
}

/// The tables whose rows running work moves faster than the catalog records it.
#[derive(Debug, Clone, Copy)]
enum Live {
    /// Task figures, by task id.
    Tasks,
    /// A restore's bytes written, by job id.
    Jobs,
}

/// Puts the in-memory figures of running work over the durable rows they are newer than.
fn overlay(def: &TableDef, live: Live, rows: &mut [Row], figures: &Figures) {
    let index = |name: &str| def.visible_columns().position(|c| c.name == name);
    match live {
        Live::Tasks if !figures.tasks.is_empty() => {
            let Some(key) = index("task_id") else { return };
            let columns: Vec<Option<usize>> =
                TaskProgress::COLUMNS.into_iter().map(index).collect();
            for row in rows.iter_mut() {
                let Some(p) = row[key].as_i64().and_then(|id| figures.tasks.get(&id)) else {
                    continue;
                };
                for (column, value) in columns.iter().zip(p.values()) {
                    if let Some(i) = column {
                        row[*i] = value;
                    }
                }
            }
        }
        Live::Jobs if !figures.jobs.is_empty() => {
            let Some(key) = index("job_id") else {
                return;
            };
            let columns = [
                index("finish_bytes"),
                index("finish_file_count"),
                index("file_count"),
                index("output_bytes"),
            ];
            for row in rows.iter_mut() {
                let Some(f) = row[key].as_i64().and_then(|id| figures.jobs.get(&id)) else {
                    continue;
                };
                for (column, value) in
                    columns
                        .iter()
                        .zip([f.bytes, f.files, f.total_files, f.written])
                {
                    if let Some(i) = column {
                        row[*i] = value.into();
                    }
                }
            }
        }
        _ => {}
    }
}

fn to_batch(def: &TableDef, schema: &SchemaRef, rows: &[Row]) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = def
        .visible_columns()
        .enumerate()
        .map(|(i, c)| column(c.ty, rows.iter().map(move |r| &r[i])))
        .collect();
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn column<'a>(ty: ColumnType, values: impl ExactSizeIterator<Item = &'a Value>) -> ArrayRef {
    let n = values.len();
    match ty {
        ColumnType::Int => {
            let mut b = Int64Builder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_i64()));
            Arc::new(b.finish())
        }
        ColumnType::Real => {
            let mut b = Float64Builder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_f64()));
            Arc::new(b.finish())
        }
        ColumnType::Time => {
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            values.for_each(|v| b.append_option(v.as_i64()));
            Arc::new(b.finish())
        }
        ColumnType::Text | ColumnType::Secret => {
            let mut b = StringBuilder::with_capacity(n, n * 16);
            values.for_each(|v| match v {
                Value::Null => b.append_null(),
                Value::Text(s) => b.append_value(s),
                other => b.append_value(other.to_string()),
            });
            Arc::new(b.finish())
        }
    }
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter that gives the same answer each time it is evaluated is applied here;
    /// `random()` and the like are left to DataFusion.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if f.is_volatile() {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    TableProviderFilterPushDown::Exact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.rows(state, filters)?;
        let mut source =
            MemorySourceConfig::try_new(&[vec![batch]], self.schema.clone(), projection.cloned())?
                .with_limit(limit);
        if let Some(ordering) = &self.ordering {
            source = source.try_with_sort_information(vec![ordering.clone()])?;
        }
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use super::*;
    use crate::views::{PlanCache, Views};

    fn add_job(catalog: &Catalog, id: i64, kind: &str, status: &str) {
        catalog
            .write(|tx| {
                tx.execute(
                    "INSERT INTO job (job_id, job_kind, tenant_id, incarnation, backup_set_id, \
                     initiator_tenant_id, initiator_job_id, executor_tenant_id, plus_archivelog, \
                     backup_type, job_level, encryption_mode, start_ts, end_ts, status, result, \
                     comment, description, path, stop_mode, restart_pass) VALUES \
                     (?, ?, 1002, 1, ?, 1, 0, '1002', 0, 'FULL', 'USER_TENANT', 'NONE', ?, ?, ?, \
                     0, '', '', 'file:///b', 'NONE', 0)",
                    &[
                        id.into(),
                        kind.into(),
                        id.into(),
                        (id * 1_000_000).into(),
                        (id * 1_000_000 + 5).into(),
                        status.into(),
                    ],
                )?;
                Ok(())
            })
            .unwrap();
    }

    async fn ids(views: &Views, sql: &str) -> Vec<i64> {
        let ctx = views.session();
        let plans = PlanCache::default();
        let plan = views.plan(&ctx, &plans, sql).await.unwrap();
        let batches = views.query(&ctx, &plans, sql, &plan, false).await;
        let mut out = Vec::new();
        for batch in batches.unwrap() {
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            out.extend(column.iter().map(|v| v.unwrap()));
        }
        out
    }

    async fn explain(views: &Views, sql: &str) -> String {
        let ctx = views.session();
        let sql = format!("EXPLAIN {sql}");
        let plans = PlanCache::default();
        let plan = views.plan(&ctx, &plans, &sql).await.unwrap();
        let batches = views.query(&ctx, &plans, &sql, &plan, false).await;
        pretty_format_batches(&batches.unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn primary_keys_are_read_from_the_constraints() {
        let job = crate::catalog::schema::TABLES
            .iter()
            .find(|t| t.name == "job")
            .unwrap();
        assert_eq!(job.primary_key(), vec!["job_id"]);
        let set = crate::catalog::schema::TABLES
            .iter()
            .find(|t| t.name == "backup_set")
            .unwrap();
        assert_eq!(set.primary_key(), vec!["backup_set_id", "copy_id"]);
    }

    #[tokio::test]
    async fn pushed_filters_order_and_cache_give_the_answers_of_a_plain_scan() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        for id in 1..=40 {
            let status = ["COMPLETED", "FAILED", "DOING", "CANCELED"][id as usize % 4];
            let kind = if id % 5 == 0 { "RESTORE" } else { "BACKUP" };
            add_job(&catalog, id, kind, status);
        }
        let views = Views::open(catalog.clone()).await.unwrap();
        let ended = |id: i64| id % 5 != 0 && id % 4 != 2;
        let history: Vec<i64> = (1..=40).rev().filter(|&id| ended(id)).collect();

        let newest = "SELECT job_id FROM cdb_ob_backup_job_history ORDER BY job_id DESC LIMIT 5";
        assert_eq!(ids(&views, newest).await, history[..5]);
        assert!(
            !explain(&views, newest).await.contains("SortExec"),
            "rows kept newest first need no sort"
        );
        let oldest = "SELECT job_id FROM cdb_ob_backup_job_history ORDER BY job_id LIMIT 3";
        let mut ascending = history.clone();
        ascending.reverse();
        assert_eq!(ids(&views, oldest).await, ascending[..3]);
        // The same query again is answered from the generation's cache, identically.
        assert_eq!(ids(&views, newest).await, history[..5]);
        let point = "SELECT job_id FROM cdb_ob_backup_job_history WHERE job_id = 7";
        assert_eq!(ids(&views, point).await, vec![7]);
        let absent = "SELECT job_id FROM cdb_ob_backup_job_history WHERE job_id = 10";
        assert!(ids(&views, absent).await.is_empty(), "10 is a restore job");
        let volatile = "SELECT job_id FROM cdb_ob_backup_job_history WHERE random() < 2 \
                        ORDER BY job_id DESC";
        assert_eq!(ids(&views, volatile).await, history);

        // A write is visible to the next query, through every cached form.
        add_job(&catalog, 41, "BACKUP", "COMPLETED");
        assert_eq!(ids(&views, newest).await[0], 41);
        let point = "SELECT job_id FROM cdb_ob_backup_job_history WHERE job_id = 41";
        assert_eq!(ids(&views, point).await, vec![41]);
    }
}
