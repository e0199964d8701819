//! One client connection's state: its query session, its user, and its settings.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use datafusion::prelude::SessionContext;

use crate::views::PlanCache;

/// Run-time settings clients send at connect (`SET extra_float_digits = 3`, ...), answered back
/// by `SHOW`; they do not change how backstop computes anything.
const DEFAULTS: &[(&str, &str)] = &[
    ("server_version", "16.6"),
    ("server_version_num", "160006"),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("search_path", "oceanbase"),
    ("application_name", ""),
    ("extra_float_digits", "1"),
    ("max_identifier_length", "63"),
    ("transaction_isolation", "read committed"),
    ("default_transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
    ("statement_timeout", "0"),
    ("lock_timeout", "0"),
    ("tenant", "sys"),
];

pub struct Session {
    pub ctx: SessionContext,
    pub user: String,
    /// `ip:port` of the client, for the audit trail.
    pub client_address: String,
    /// The plans of the queries this session ran, for when it sends them again.
    pub plans: PlanCache,
    vars: Mutex<HashMap<String, String>>,
    /// The channels of `LISTEN`: their events reach this session as notifications.
    listening: Mutex<BTreeSet<String>>,
    /// The passwords of `SET ENCRYPTION` and `SET DECRYPTION`, for this session only.
    keys: Mutex<crate::control::keys::SessionKeys>,
}

impl Session {
    pub fn new(ctx: SessionContext, user: String, client_address: String) -> Session {
        ctx.register_udf(crate::views::pg_functions::session_user(&user));
        Session {
            ctx,
            user,
            client_address,
            plans: PlanCache::default(),
            vars: Mutex::new(HashMap::new()),
            listening: Mutex::new(BTreeSet::new()),
            keys: Mutex::new(Default::default()),
        }
    }

    /// The session's backup passwords.
    pub fn keys(&self) -> crate::control::keys::SessionKeys {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keeps what `SET ENCRYPTION` / `SET DECRYPTION` gave.
    pub fn change_keys(&self, change: crate::control::keys::KeyChange) {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(change);
    }

    pub fn listen(&self, channel: &str) {
        self.listening
            .lock()
            .expect("listening poisoned")
            .insert(channel.to_string());
    }

    /// `UNLISTEN channel`, or every channel with `*`.
    pub fn unlisten(&self, channel: &str) {
        let mut listening = self.listening.lock().expect("listening poisoned");
        if channel == "*" {
            listening.clear();
        } else {
            listening.remove(channel);
        }
    }

    pub fn is_listening(&self, channel: &str) -> bool {
        self.listening
            .lock()
            .expect("listening poisoned")
            .contains(channel)
    }

    pub fn set_var(&self, name: &str, value: &str) {
        self.vars
            .lock()
            .expect("session vars poisoned")
            .insert(name.to_ascii_lowercase(), value.to_string());
    }

    pub fn reset_var(&self, name: &str) {
        let mut vars = self.vars.lock().expect("session vars poisoned");
        if name.eq_ignore_ascii_case("all") {
            vars.clear();
        } else {
            vars.remove(&name.to_ascii_lowercase());
        }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        if let Some(v) = self.vars.lock().expect("session vars poisoned").get(&name) {
            return Some(v.clone());
        }
        DEFAULTS
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}
