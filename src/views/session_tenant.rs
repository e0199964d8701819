//! The tenant a session works on (`SET tenant = name`), as a one-row table that the `DBA_OB_*`
//! views join with. The value lives in the session's DataFusion config, so the same view
//! definition answers each session for its own tenant.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

use crate::catalog::SYS_TENANT_ID;

/// Session config extension holding the session's tenant id.
#[derive(Debug, Clone, Copy)]
pub struct SessionTenant(pub i64);

#[derive(Debug)]
pub struct SessionTenantTable {
    schema: SchemaRef,
}

impl Default for SessionTenantTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SessionTenantTable {
    pub fn new() -> SessionTenantTable {
        SessionTenantTable {
            schema: Arc::new(Schema::new(vec![Field::new(
                "tenant_id",
                DataType::Int64,
                false,
            )])),
        }
    }
}

#[async_trait]
impl TableProvider for SessionTenantTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let tenant = state
            .config()
            .get_extension::<SessionTenant>()
            .map_or(SYS_TENANT_ID, |t| t.0);
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![Arc::new(Int64Array::from(vec![tenant]))],
        )?;
        let source =
            MemorySourceConfig::try_new(&[vec![batch]], self.schema.clone(), projection.cloned())?;
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }
}
