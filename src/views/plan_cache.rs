//! The plans of the queries one session ran, by their text.
//!
//! A dashboard or a polling script sends the same query again and again; planning it (SQL to a
//! logical plan, the analyzer and some thirty optimizer rules) costs several times what running it
//! over the cached catalog rows does. A session keeps the optimized plan of each query it ran and
//! only builds the physical plan again, which is where the tables are read, so the rows are always
//! current. A plan is kept only when the query means the same thing every time it runs: no
//! `now()`, `random()` or other function that is not immutable, and no parameters. `CREATE VIEW`
//! and `DROP VIEW` change what a name means, so they start every session's cache over.

use std::collections::HashMap;
use std::sync::Mutex;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};

/// How many plans one session keeps; past that it starts over.
const ENTRIES: usize = 64;

#[derive(Debug, Default)]
pub struct PlanCache {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// The views' epoch the plan was made in.
    epoch: u64,
    plan: LogicalPlan,
    optimized: Option<LogicalPlan>,
}

impl PlanCache {
    pub(super) fn plan(&self, sql: &str, epoch: u64) -> Option<LogicalPlan> {
        let entries = self.entries.lock().expect("plan cache poisoned");
        entries
            .get(sql)
            .filter(|e| e.epoch == epoch)
            .map(|e| e.plan.clone())
    }

    pub(super) fn optimized(&self, sql: &str, epoch: u64) -> Option<LogicalPlan> {
        let entries = self.entries.lock().expect("plan cache poisoned");
        entries
            .get(sql)
            .filter(|e| e.epoch == epoch)
            .and_then(|e| e.optimized.clone())
    }

    pub(super) fn keep(&self, sql: &str, epoch: u64, plan: &LogicalPlan) {
        if !cacheable(plan) {
            return;
        }
        let mut entries = self.entries.lock().expect("plan cache poisoned");
        if entries.len() >= ENTRIES && !entries.contains_key(sql) {
            entries.clear();
        }
        entries.insert(
            sql.to_string(),
            Entry {
                epoch,
                plan: plan.clone(),
                optimized: None,
            },
        );
    }

    pub(super) fn keep_optimized(&self, sql: &str, epoch: u64, optimized: &LogicalPlan) {
        let mut entries = self.entries.lock().expect("plan cache poisoned");
        if let Some(entry) = entries.get_mut(sql).filter(|e| e.epoch == epoch) {
            entry.optimized = Some(optimized.clone());
        }
    }
}

/// Whether `plan` gives the same answer over the same rows whenever it runs.
fn cacheable(plan: &LogicalPlan) -> bool {
    if matches!(
        plan,
        LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Copy(_)
    ) {
        return false;
    }
    let mut steady = true;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                let changing = match e {
                    Expr::Placeholder(_) => true,
                    Expr::ScalarFunction(f) => {
                        f.func.signature().volatility != Volatility::Immutable
                    }
                    _ => false,
                };
                if changing {
                    steady = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if steady {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    steady
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int64Array};

    use crate::catalog::Catalog;
    use crate::views::{PlanCache, Views};

    async fn count(
        views: &Views,
        ctx: &datafusion::prelude::SessionContext,
        plans: &PlanCache,
        sql: &str,
    ) -> i64 {
        let plan = views.plan(ctx, plans, sql).await.unwrap();
        let batches = views.query(ctx, plans, sql, &plan, false).await.unwrap();
        let column = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        column.value(0)
    }

    async fn run(
        views: &Views,
        ctx: &datafusion::prelude::SessionContext,
        plans: &PlanCache,
        sql: &str,
    ) {
        let plan = views.plan(ctx, plans, sql).await.unwrap();
        views
            .execute(ctx, sql, plan)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn kept_plans_read_current_rows_and_follow_view_changes() {
        let dir = tempfile::tempdir().unwrap();
        let catalog: Arc<Catalog> = Catalog::open(dir.path()).unwrap();
        let views = Views::open(catalog.clone()).await.unwrap();
        let ctx = views.session();
        let plans = PlanCache::default();
        let tenants = "SELECT count(*) FROM backstop.tenant";
        let before = count(&views, &ctx, &plans, tenants).await;
        assert!(
            plans.optimized(tenants, 0).is_some(),
            "a steady query is kept"
        );
        catalog
            .write(|tx| {
                tx.execute(
                    "INSERT INTO tenant (tenant_id, tenant_name, kind, source, status, create_time) \
                     VALUES (5001, 'extra', 'directory', 'dir:///x', 'NORMAL', 0)",
                    &[],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(count(&views, &ctx, &plans, tenants).await, before + 1);

        let clock = "SELECT count(*) FROM backstop.tenant WHERE create_time < now()";
        count(&views, &ctx, &plans, clock).await;
        assert!(plans.plan(clock, 0).is_none(), "now() changes: not kept");

        run(&views, &ctx, &plans, "CREATE VIEW mine AS SELECT 1 AS n").await;
        let mine = "SELECT count(*) FROM mine";
        assert_eq!(count(&views, &ctx, &plans, mine).await, 1);
        run(&views, &ctx, &plans, "DROP VIEW mine").await;
        run(
            &views,
            &ctx,
            &plans,
            "CREATE VIEW mine AS SELECT 1 AS n UNION ALL SELECT 2",
        )
        .await;
        assert_eq!(
            count(&views, &ctx, &plans, mine).await,
            2,
            "the new view, not the kept plan"
        );
    }
}
