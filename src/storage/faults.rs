//! Injected destination faults, for tests that drive the retry and failure rules through a real
//! server: `BACKSTOP_STORAGE_FAULTS` in the server's environment makes chosen writes to `file://`
//! destinations fail the way a sick disk would.
//!
//! The value is a `;`-separated list of rules `put:ERROR:COUNT[:PREFIX]`:
//! * `ERROR` is `eio` (an I/O error, which backstop retries) or `enospc` (a full destination,
//!   which it does not);
//! * `COUNT` is how many matching writes fail before writes succeed again, or `*` for all;
//! * `PREFIX` limits the rule to objects whose names start with it (`packs/`, `sets/`).
//!
//! `BACKSTOP_STORAGE_FAULTS='put:eio:2:packs/'` fails the first two pack writes of the process and
//! nothing else. Counts are shared by every destination the process opens, so a retry sees the
//! faults that are left. Without the variable this module does nothing.

use std::io;
use std::sync::{Mutex, OnceLock};

/// The environment variable holding the rules.
pub const ENV: &str = "BACKSTOP_STORAGE_FAULTS";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    errno: i32,
    /// Writes still to fail; `None` fails every one.
    remaining: Option<u64>,
    prefix: String,
}

fn parse(spec: &str) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    for text in spec.split(';').map(str::trim).filter(|r| !r.is_empty()) {
        let parts: Vec<&str> = text.split(':').collect();
        let (op, error, count) = match parts.as_slice() {
            [op, error, count] | [op, error, count, _] => (*op, *error, *count),
            _ => return Err(format!("rule {text:?} is not put:ERROR:COUNT[:PREFIX]")),
        };
        if op != "put" {
            return Err(format!("rule {text:?}: only put can fail, not {op:?}"));
        }
        let errno = match error {
            "eio" => libc::EIO,
            "enospc" => libc::ENOSPC,
            other => {
                return Err(format!(
                    "rule {text:?}: unknown error {other:?} (eio, enospc)"
                ));
            }
        };
        let remaining = match count {
            "*" => None,
            n => Some(
                n.parse()
                    .map_err(|_| format!("rule {text:?}: count {n:?} is not a number or *"))?,
            ),
        };
        rules.push(Rule {
            errno,
            remaining,
            prefix: parts.get(3).copied().unwrap_or("").to_string(),
        });
    }
    Ok(rules)
}

static RULES: OnceLock<Mutex<Vec<Rule>>> = OnceLock::new();

/// Reads the rules from the environment; the server calls it at start so that a malformed value
/// stops it there, with the reason.
pub fn init() -> Result<(), String> {
    let rules = match std::env::var(ENV) {
        Ok(spec) => parse(&spec).map_err(|e| format!("{ENV}: {e}"))?,
        Err(_) => Vec::new(),
    };
    if !rules.is_empty() {
        tracing::warn!(rules = ?rules, "storage fault injection is on ({ENV})");
    }
    let _ = RULES.set(Mutex::new(rules));
    Ok(())
}

fn rules() -> &'static Mutex<Vec<Rule>> {
    RULES.get_or_init(|| Mutex::new(Vec::new()))
}

/// The error an injected fault makes the write of `object` fail with, if any.
pub fn on_put(object: &str) -> Option<io::Error> {
    take(&mut rules().lock().expect("fault rules poisoned"), object)
}

fn take(rules: &mut [Rule], object: &str) -> Option<io::Error> {
    let rule = rules
        .iter_mut()
        .find(|r| object.starts_with(&r.prefix) && r.remaining != Some(0))?;
    if let Some(n) = rule.remaining.as_mut() {
        *n -= 1;
    }
    Some(io::Error::from_raw_os_error(rule.errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fail_their_count_of_matching_writes_then_stop() {
        let mut rules = parse("put:eio:2:packs/; put:enospc:*:sets/").unwrap();
        assert!(take(&mut rules, "index/a").is_none());
        for _ in 0..2 {
            let e = take(&mut rules, "packs/ab/x.pack").unwrap();
            assert_eq!(e.raw_os_error(), Some(libc::EIO));
        }
        assert!(take(&mut rules, "packs/ab/x.pack").is_none());
        for _ in 0..5 {
            let e = take(&mut rules, "sets/1").unwrap();
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        }
    }

    #[test]
    fn malformed_rules_are_refused_with_the_reason() {
        assert!(parse("get:eio:1").unwrap_err().contains("only put"));
        assert!(parse("put:boom:1").unwrap_err().contains("unknown error"));
        assert!(parse("put:eio:x").unwrap_err().contains("not a number"));
        assert!(parse("put").unwrap_err().contains("put:ERROR:COUNT"));
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
