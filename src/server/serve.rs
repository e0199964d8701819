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

use super::session::Session;
use crate::events::Event;

/// A client that has not authenticated by then is dropped.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one connection until the client leaves.
pub async fn serve<H: PgWireServerHandlers>(
    tcp: TcpStream,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    handlers: H,
    mut events: broadcast::Receiver<Event>,
) -> io::Result<()> {
    let startup = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup);
    let negotiated = tokio::select! {
        _ = &mut startup => return Ok(()),
        socket = negotiate_tls(tcp, tls) => socket?,
    };
    let Some(mut socket) = negotiated else {
        return Ok(());
    };
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
        // Terminate: the client leaves and waits for the socket to close.
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let cancel_request = matches!(msg, PgWireFrontendMessage::CancelRequest(_));
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
