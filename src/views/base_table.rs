//! A catalog table as a DataFusion table: every query reads the catalog live.
//!
//! Rows are converted to Arrow once per catalog generation and shared by the queries that follow
//! until the next write, so a dashboard polling an unchanged history costs no SQLite reads.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::catalog::schema::{ColumnType, TableDef};
use crate::catalog::{Catalog, Row, Value};

#[derive(Debug)]
pub struct CatalogTable {
    def: &'static TableDef,
    catalog: Arc<Catalog>,
    schema: SchemaRef,
    /// The last batch read and the catalog generation it was read at.
    cache: Mutex<Option<(u64, RecordBatch)>>,
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
        CatalogTable {
            def,
            catalog,
            schema: Arc::new(Schema::new(fields)),
            cache: Mutex::new(None),
        }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let generation = self.catalog.generation();
        if let Some((seen, batch)) = self.cache.lock().expect("table cache poisoned").as_ref() {
            if *seen == generation {
                return Ok(batch.clone());
            }
        }
        let rows = self
            .catalog
            .scan(self.def)
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let batch = to_batch(self.def, &self.schema, &rows)?;
        *self.cache.lock().expect("table cache poisoned") = Some((generation, batch.clone()));
        Ok(batch)
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

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.batch()?;
        let source =
            MemorySourceConfig::try_new(&[vec![batch]], self.schema.clone(), projection.cloned())?
                .with_limit(limit);
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }
}
