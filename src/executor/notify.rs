//! Announcing plan runs and job ends (SPEC §2.7). Every job's end goes to the global channel
//! `backstop_events`; a plan's runs and its jobs' ends also go to the plan's NOTIFY target: a
//! channel (`LISTEN name` in any session) or an `http://` / `https://` URL, POSTed as JSON and
//! retried with backoff for `plan_notify_retry_time` (10m) without ever holding up a job. Every
//! delivery is a row of `CDB_OB_BACKUP_NOTIFICATIONS`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Executor;
use crate::catalog::{SYS_TENANT_ID, mask_secrets};
use crate::events::{GLOBAL_CHANNEL, is_channel};

/// The first wait between two attempts of a webhook; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the system's CA certificates are (Debian's `ca-certificates`).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn show_time(micros: Option<i64>) -> Option<String> {
    micros
        .and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

impl Executor {
    /// Announces the end of job `job_id`: on `backstop_events`, and to its plan's target.
    pub(super) fn announce_job_end(&self, job_id: i64) {
        let facts = match self.catalog.job_facts(job_id) {
            Ok(Some(facts)) => facts,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job_id, error = %e, "cannot describe an ended job for its event");
                return;
            }
        };
        let duration = match (facts.start_ts, facts.end_ts) {
            (Some(start), Some(end)) => (end - start) as f64 / 1e6,
            _ => 0.0,
        };
        let payload = json!({
            "event": "job_end",
            "job_id": job_id,
            "kind": facts.kind,
            "tenant_id": facts.tenant_id,
            "tenant": facts.tenant_name,
            "status": facts.status,
            "result": facts.result,
            "set_id": facts.set_id,
            "bytes": facts.bytes,
            "duration_s": duration,
            "start": show_time(facts.start_ts),
            "end": show_time(facts.end_ts),
            "plan": facts.plan_name,
            "run": facts.run_id,
            "chain_id": facts.chain_id,
        })
        .to_string();
        self.deliver(GLOBAL_CHANNEL, "job_end", &payload);
        if let Some(target) = facts.notify.as_deref() {
            self.deliver(target, "job_end", &payload);
        }
    }

    /// Announces a plan run (started or skipped) to the plan's target.
    pub(super) fn announce_plan_run(
        &self,
        plan: &crate::catalog::plans::PlanRecord,
        run_id: i64,
        status: &str,
        jobs: &[i64],
        comment: &str,
    ) {
        let Some(target) = plan.notify.as_deref() else {
            return;
        };
        let payload = json!({
            "event": "plan_run",
            "plan": plan.name,
            "run": run_id,
            "status": status,
            "tenants": plan.tenants,
            "jobs": jobs,
            "comment": comment,
        })
        .to_string();
        self.deliver(target, "plan_run", &payload);
    }

    /// Sends one event to a channel (now) or a URL (in the background, retried).
    fn deliver(&self, target: &str, event: &str, payload: &str) {
        let shown = mask_secrets(target);
        if is_channel(target) {
            let reached = self.events.publish(target, payload);
            let outcome = format!("published to {reached} session(s)");
            if let Err(e) =
                self.catalog
                    .record_notification(&shown, event, payload, "DELIVERED", 1, &outcome)
            {
                tracing::warn!(target = %shown, error = %e, "cannot record a notification");
            }
            return;
        }
        let id = match self
            .catalog
            .record_notification(&shown, event, payload, "PENDING", 0, "")
        {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(target = %shown, error = %e, "cannot record a notification");
                return;
            }
        };
        let catalog = self.catalog.clone();
        let (url, payload) = (target.to_string(), payload.to_string());
        let stop = self.worker_token();
        let patience = self.duration_parameter(
            SYS_TENANT_ID,
            "plan_notify_retry_time",
            Duration::from_secs(600),
        );
        self.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + patience;
            let mut backoff = FIRST_BACKOFF;
            for attempt in 1..=1_000i64 {
                let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, post(&url, &payload)).await;
                let (done, said) = match outcome {
                    Ok(Ok(status)) if (200..300).contains(&status) => (true, format!("HTTP {status}")),
                    Ok(Ok(status)) => (false, format!("HTTP {status}")),
                    Ok(Err(e)) => (false, e),
                    Err(_) => (false, format!("no answer within {}s", ATTEMPT_TIMEOUT.as_secs())),
                };
                let gave_up = !done && tokio::time::Instant::now() + backoff > deadline;
                let status = if done {
                    "DELIVERED"
                } else if gave_up {
                    "FAILED"
                } else {
                    "RETRYING"
                };
                if let Err(e) = catalog.notification_attempt(id, status, attempt, &said)
                {
                    tracing::warn!(notification = id, error = %e, "cannot record a delivery attempt");
                }
                if done || gave_up {
                    return;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }
}

/// POSTs `body` as JSON to `url`; returns the HTTP status, or what went wrong (never the URL's
/// secrets).
async fn post(url: &str, body: &str) -> Result<u16, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err("not an http:// or https:// URL".into());
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().unwrap_or(80)),
        _ => (authority, if tls { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: backstop\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    if !tls {
        return exchange(tcp, &request).await;
    }
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    let bundle = std::fs::read(CA_BUNDLE).map_err(|e| format!("cannot read {CA_BUNDLE}: {e}"))?;
    for cert in rustls_pemfile::certs(&mut bundle.as_slice()).flatten() {
        // A certificate the bundle holds but rustls refuses is simply not trusted.
        roots.add(cert).ok();
    }
    let config = tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host} is not a server name: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {host}: {e}"))?;
    exchange(stream, &request).await
}

/// Sends a request and reads the status of the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<u16, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut head = vec![0u8; 1024];
    let mut read = 0;
    while read < head.len() {
        let n = stream
            .read(&mut head[read..])
            .await
            .map_err(|e| format!("cannot read the answer: {e}"))?;
        if n == 0 || head[..read + n].windows(2).any(|w| w == b"\r\n") {
            read += n;
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "the answer is not HTTP".to_string())
}

/// A NOTIFY target a plan accepts: a channel name or an http(s) URL.
pub fn valid_target(target: &str) -> bool {
    is_channel(target) || target.starts_with("http://") || target.starts_with("https://")
}
