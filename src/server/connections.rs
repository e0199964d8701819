//! The open client connections, kept so that a clean shutdown can tell each one why it ends:
//! PostgreSQL's `FATAL 57P01 terminating connection due to administrator command`, the error
//! every driver knows, instead of a connection that just drops.

use std::collections::HashMap;
use std::io::Write;
use std::net::Shutdown;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpStream;

/// What a connection is told when the server shuts down.
const GOODBYE: &str =
    "terminating connection due to administrator command: backstop is shutting down";

pub struct Connections {
    /// A second handle on each connection's socket, by connection number.
    open: Mutex<HashMap<u64, std::net::TcpStream>>,
    next: AtomicU64,
    /// With TLS a connection's bytes are encrypted by its own task: the goodbye cannot be
    /// written from outside, so such connections are only closed.
    tls: bool,
}

impl Connections {
    pub fn new(tls: bool) -> Connections {
        Connections {
            open: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            tls,
        }
    }

    /// Keeps a second handle on a new connection's socket; returns the socket to serve it on.
    pub fn track(&self, socket: TcpStream) -> std::io::Result<(TcpStream, u64)> {
        let socket = socket.into_std()?;
        let second = socket.try_clone()?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.open
            .lock()
            .expect("connections poisoned")
            .insert(id, second);
        Ok((TcpStream::from_std(socket)?, id))
    }

    /// How many connections are open now.
    pub fn count(&self) -> usize {
        self.open.lock().expect("connections poisoned").len()
    }

    /// The connection ended by itself.
    pub fn forget(&self, id: u64) {
        self.open.lock().expect("connections poisoned").remove(&id);
    }

    /// Tells every open connection `57P01` and closes it. By now no statement runs (the
    /// handler refuses new ones with the same error while the server shuts down).
    pub fn terminate(&self) {
        let open: Vec<std::net::TcpStream> = self
            .open
            .lock()
            .expect("connections poisoned")
            .drain()
            .map(|(_, s)| s)
            .collect();
        let goodbye = fatal_error(crate::error::sqlstate::ADMIN_SHUTDOWN.code(), GOODBYE);
        for mut socket in open {
            if !self.tls {
                // A client that went away cannot be told; closing is all that is left.
                if let Err(e) = socket.write_all(&goodbye) {
                    tracing::debug!(error = %e, "cannot tell a connection that the server shuts down");
                }
            }
            if let Err(e) = socket.shutdown(Shutdown::Both) {
                tracing::debug!(error = %e, "cannot close a connection");
            }
        }
    }
}

/// A protocol-3 ErrorResponse of severity FATAL: `E`, its length, then the fields.
pub(super) fn fatal_error(code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', code),
        (b'M', message),
    ] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&fields);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_goodbye_is_one_well_formed_error_response() {
        let bytes = fatal_error("57P01", "bye");
        assert_eq!(bytes[0], b'E');
        let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
        assert_eq!(len + 1, bytes.len());
        let body = &bytes[5..];
        assert_eq!(body, b"SFATAL\0VFATAL\0C57P01\0Mbye\0\0");
    }
}
