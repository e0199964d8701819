//! `ALTER SYSTEM WAIT JOB n` and the trailing `WAIT` of start statements: block until the job
//! ends, sending its progress as NOTICE messages (a changed line at most once a second, and a
//! last line with the job's end), and answer with the job's own error when it did not complete.
//! A client's query cancel ends the waiting, not the job.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{Sink, SinkExt};
use pgwire::api::results::{Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::NoticeResponse;

use crate::error::{SqlError, sqlstate};
use crate::executor::{Executor, job_error};

/// How often progress is looked at while nothing ends.
const POLL: Duration = Duration::from_millis(500);
/// The least time between two progress lines.
const LINE_EVERY: Duration = Duration::from_secs(1);

pub async fn notice<C>(client: &mut C, line: String) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let notice = ErrorInfo::new("NOTICE".into(), "00000".into(), line);
    client
        .send(PgWireBackendMessage::NoticeResponse(NoticeResponse::from(
            notice,
        )))
        .await?;
    Ok(())
}

pub async fn wait_for_job<C>(
    client: &mut C,
    executor: &Arc<Executor>,
    job_id: i64,
    timeout: Option<Duration>,
) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut ended = executor.subscribe();
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut last_line = String::new();
    let mut last_sent: Option<Instant> = None;
    loop {
        // The catalog is SQLite: read it on a blocking thread, never on the runtime's.
        let reader = executor.clone();
        let (job, line) = tokio::task::spawn_blocking(move || reader.job_state(job_id))
            .await
            .map_err(|e| SqlError::internal(format!("reading job {job_id} failed: {e}")))??;
        if job.status.is_end() {
            notice(client, line).await?;
            return match job_error(&job) {
                Some(e) => Err(e.into()),
                None => Ok(Response::Execution(Tag::new("ALTER SYSTEM"))),
            };
        }
        if executor.is_shutting_down() {
            return Err(super::handler::shutting_down().into());
        }
        if line != last_line && last_sent.is_none_or(|t| t.elapsed() >= LINE_EVERY) {
            notice(client, line.clone()).await?;
            last_line = line;
            last_sent = Some(Instant::now());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SqlError::new(
                sqlstate::QUERY_CANCELED,
                format!("waiting for job {job_id} timed out; the job goes on"),
            )
            .into());
        }
        tokio::select! {
            _ = ended.recv() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
