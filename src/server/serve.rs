//! One client connection: pgwire's message processing, and the events of the channels the
//! session LISTENs to, sent as `NotificationResponse` between the client's messages (the
//! protocol lets a server send one at any time; PostgreSQL does so while the session is idle).
//!
//! pgwire's own `process_socket` only ever waits for the client, so a notification would wait
//! for the client's next statement; this loop waits for either.

use std::io;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::ErrorHandler;
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::messages::response::NotificationResponse;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::limits::{Limits, fatal, too_long};
use super::session::Session;
use crate::events::Event;

/// How long a refused client is given to read why.
const REFUSAL_WRITE: Duration = Duration::from_secs(5);

/// Tells a client it is not served (`FATAL code message`, as PostgreSQL does when it is full)
/// and closes; a client that does not read it within seconds is just closed.
pub async fn refuse(mut tcp: TcpStream, code: &'static str, message: String) {
    use tokio::io::AsyncWriteExt;
    let bytes = super::connections::fatal_error(code, &message);
    let told = tokio::time::timeout(REFUSAL_WRITE, tcp.write_all(&bytes)).await;
    if !matches!(told, Ok(Ok(()))) {
        tracing::debug!(code, "a refused client could not be told why");
    }
}

/// Serves one connection until the client leaves, within `limits`.
pub async fn serve<H: PgWireServerHandlers>(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    tls_required: bool,
    limits: Limits,
    handlers: H,
    mut events: broadcast::Receiver<Event>,
) -> io::Result<()> {
    let startup = tokio::time::sleep(limits.authentication_timeout);
    tokio::pin!(startup);
    let negotiated = tokio::select! {
        _ = &mut startup => return Ok(()),
        socket = negotiate_tls(tcp, tls) => socket?,
    };
    let Some(mut socket) = negotiated else {
        return Ok(());
    };
    if tls_required && !socket.is_secure() {
        let refusal = fatal(
            "28000",
            "this backstop server accepts TLS connections only: connect with sslmode=require"
                .into(),
        );
        socket
            .send(PgWireBackendMessage::ErrorResponse(refusal.into()))
            .await?;
        return Ok(());
    }
    // Reset after every message once the client is in; fires only with idle_session_timeout.
    let idle_limit = limits.idle_session_timeout.unwrap_or(Duration::MAX);
    let idle = tokio::time::sleep(idle_limit.min(Duration::from_secs(86_400 * 365)));
    tokio::pin!(idle);
    let startup_handler = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    let errors = handlers.error_handler();
    let mut events_open = true;
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingSslRequest
                | PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let msg = tokio::select! {
            _ = &mut startup, if starting => None,
            _ = &mut idle, if !starting && limits.idle_session_timeout.is_some() => {
                let goodbye = fatal(
                    "57P05",
                    format!(
                        "terminating connection due to idle-session timeout ({})",
                        crate::catalog::parameters::format_duration(idle_limit)
                    ),
                );
                socket
                    .send(PgWireBackendMessage::ErrorResponse(goodbye.into()))
                    .await?;
                break;
            }
            msg = socket.next() => msg,
            event = events.recv(), if events_open && !starting => {
                match event {
                    Ok(event) => {
                        let listening = socket
                            .session_extensions()
                            .get::<Session>()
                            .is_some_and(|s| s.is_listening(&event.channel));
                        if listening {
                            let pid = socket.pid_and_secret_key().0;
                            socket
                                .send(PgWireBackendMessage::NotificationResponse(
                                    NotificationResponse::new(pid, event.channel, event.payload),
                                ))
                                .await?;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a slow session missed notifications");
                    }
                    Err(RecvError::Closed) => events_open = false,
                }
                continue;
            }
        };
        let Some(Ok(msg)) = msg else {
            break;
        };
        if let Some(limit) = limits.idle_session_timeout {
            idle.as_mut().reset(tokio::time::Instant::now() + limit);
        }
        // Terminate: the client leaves and waits for the socket to close.
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
        let length = match &msg {
            PgWireFrontendMessage::Query(q) => q.query.len(),
            PgWireFrontendMessage::Parse(p) => p.query.len(),
            _ => 0,
        };
        if length > limits.max_statement_size {
            process_error(&mut socket, too_long(length, &limits), extended_query).await?;
            continue;
        }
        let processed = process_message(
            msg,
            &mut socket,
            startup_handler.clone(),
            simple.clone(),
            extended.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await;
        if let Err(mut e) = processed {
            errors.on_error(&socket, &mut e);
            let fatal = e.is_fatal();
            process_error(&mut socket, e, extended_query).await?;
            if fatal {
                break;
            }
        }
        // A cancel request comes on a connection of its own, which then ends.
        if cancel_request {
            break;
        }
    }
    Ok(())
}
