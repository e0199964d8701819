//! Events clients can listen to (SPEC §2.7): a plan run, the end of a job. One bus per server;
//! the executor publishes, every session that ran `LISTEN channel` receives what is published
//! on that channel as a PostgreSQL notification (`NotificationResponse`).

use tokio::sync::broadcast;

/// Every job's end is announced here, for monitoring.
pub const GLOBAL_CHANNEL: &str = "backstop_events";

/// How many events a slow session may fall behind before it misses some.
const BACKLOG: usize = 1024;

/// One notification: a channel and its payload (JSON for backstop's own events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub channel: String,
    pub payload: String,
}

#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    /// Publishes `payload` on `channel`; returns how many sessions' receivers it reached (each
    /// session keeps only what its LISTENs name).
    pub fn publish(&self, channel: &str, payload: &str) -> usize {
        self.tx
            .send(Event {
                channel: channel.to_string(),
                payload: payload.to_string(),
            })
            .unwrap_or(0)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// Whether `name` is a channel name as LISTEN takes it (an identifier), rather than a URL.
pub fn is_channel(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}
