//! Deliveries of plan and job events (`CDB_OB_BACKUP_NOTIFICATIONS`): one row per event and
//! target, with its attempts and outcome.

use super::{Catalog, CatalogError, now_micros};

/// What the executor needs to describe a job that ended.
#[derive(Debug, Clone, Default)]
pub struct JobFacts {
    pub kind: String,
    pub tenant_id: i64,
    pub tenant_name: Option<String>,
    pub status: String,
    pub result: i64,
    pub set_id: Option<i64>,
    pub bytes: i64,
    pub start_ts: Option<i64>,
    pub end_ts: Option<i64>,
    pub plan_name: Option<String>,
    pub chain_id: Option<i64>,
    pub run_id: Option<i64>,
    /// The plan's NOTIFY target, if any.
    pub notify: Option<String>,
}

impl Catalog {
    pub fn job_facts(&self, job_id: i64) -> Result<Option<JobFacts>, CatalogError> {
        let rows = self.read(
            "SELECT j.job_kind, j.tenant_id, t.tenant_name, j.status, j.result, j.backup_set_id, \
             COALESCE(NULLIF(j.output_bytes, 0), (SELECT sum(k.output_bytes) FROM task k \
             WHERE k.job_id = j.job_id), j.finish_bytes, 0), j.start_ts, j.end_ts, j.plan_name, \
             j.chain_id, (SELECT max(r.run_id) FROM plan_run r \
               WHERE ',' || r.jobs || ',' LIKE '%,' || CAST(j.job_id AS TEXT) || ',%'), \
             p.notify \
             FROM job j LEFT JOIN tenant t ON t.tenant_id = j.tenant_id \
             LEFT JOIN backup_plan p ON p.plan_name = j.plan_name WHERE j.job_id = ?",
            &[job_id.into()],
        )?;
        Ok(rows.first().map(|r| JobFacts {
            kind: r[0].as_str().unwrap_or_default().to_string(),
            tenant_id: r[1].as_i64().unwrap_or_default(),
            tenant_name: r[2].as_str().map(str::to_string),
            status: r[3].as_str().unwrap_or_default().to_string(),
            result: r[4].as_i64().unwrap_or_default(),
            set_id: r[5].as_i64(),
            bytes: r[6].as_i64().unwrap_or_default(),
            start_ts: r[7].as_i64(),
            end_ts: r[8].as_i64(),
            plan_name: r[9].as_str().map(str::to_string),
            chain_id: r[10].as_i64(),
            run_id: r[11].as_i64(),
            notify: r[12].as_str().map(str::to_string),
        }))
    }

    /// Records an event for `target`; returns the delivery's id.
    pub fn record_notification(
        &self,
        target: &str,
        event: &str,
        payload: &str,
        status: &str,
        attempts: i64,
        outcome: &str,
    ) -> Result<i64, CatalogError> {
        self.write(|tx| {
            let id = Catalog::next_id(tx, "notification")?;
            let now = now_micros();
            tx.execute(
                "INSERT INTO notification (notification_id, target, event, payload, status, \
                 attempts, outcome, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    id.into(),
                    target.into(),
                    event.into(),
                    payload.into(),
                    status.into(),
                    attempts.into(),
                    outcome.into(),
                    now.into(),
                    now.into(),
                ],
            )?;
            Ok(id)
        })
    }

    /// Records an attempt of a delivery.
    pub fn notification_attempt(
        &self,
        id: i64,
        status: &str,
        attempts: i64,
        outcome: &str,
    ) -> Result<(), CatalogError> {
        self.write(|tx| {
            tx.execute(
                "UPDATE notification SET status = ?, attempts = ?, outcome = ?, update_time = ? \
                 WHERE notification_id = ?",
                &[
                    status.into(),
                    attempts.into(),
                    outcome.into(),
                    now_micros().into(),
                    id.into(),
                ],
            )?;
            Ok(())
        })
    }
}
