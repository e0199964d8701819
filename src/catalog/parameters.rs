//! The parameters of SPEC §5 and the destinations of §2.1: names, defaults, accepted ranges.
//!
//! A value is checked here once, when `ALTER SYSTEM SET` stores it; readers get typed values and
//! never re-validate. Unknown names and malformed values are refused with the accepted range.

use std::time::Duration;

/// What a parameter holds and which values it accepts.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A duration like `30s`, `2m`, `1h`, `500ms`; a bare number means seconds.
    Duration {
        min: Duration,
        max: Duration,
    },
    /// A byte size like `32MB`, `1GB`; a bare number means bytes.
    Size {
        min: u64,
        max: u64,
    },
    Integer {
        min: i64,
        max: i64,
    },
    Bool,
    /// `none` or `zstd:N`.
    Compression,
    /// A destination URI (`file:///abs/path` or `s3://...`).
    DestinationUri,
    /// `LOCATION=uri [BINDING=OPTIONAL|MANDATORY] [PIECE_SWITCH_INTERVAL=1d]`.
    ArchiveDest,
    /// `ENABLE` or `DEFER`.
    DestState,
    /// Absolute folder paths separated by commas; empty for none.
    PathList,
}

#[derive(Debug)]
pub struct ParameterDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Canonical default; `None` for destinations, which have no default.
    pub default: Option<&'static str>,
    pub description: &'static str,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const DAY: u64 = 86_400;
const TB: u64 = 1 << 40;

pub const PARAMETERS: &[ParameterDef] = &[
    ParameterDef {
        name: "data_backup_dest",
        kind: Kind::DestinationUri,
        default: None,
        description: "destination of data backup sets",
    },
    ParameterDef {
        name: "log_archive_dest",
        kind: Kind::ArchiveDest,
        default: None,
        description: "destination and attributes of archive log",
    },
    ParameterDef {
        name: "log_archive_dest_state",
        kind: Kind::DestState,
        default: Some("ENABLE"),
        description: "ENABLE ships archive log, DEFER suspends the round",
    },
    ParameterDef {
        name: "backup_backup_dest",
        kind: Kind::DestinationUri,
        default: None,
        description: "destination of backup-backup copies",
    },
    ParameterDef {
        name: "backup_checkpoint_interval",
        kind: Kind::Duration {
            min: secs(1),
            max: secs(DAY),
        },
        default: Some("30s"),
        description: "longest time between two checkpoints of a running backup task",
    },
    ParameterDef {
        name: "backup_checkpoint_min_bytes",
        kind: Kind::Size { min: 0, max: TB },
        default: Some("32MB"),
        description: "bytes a task must have stored before its context is restartable",
    },
    ParameterDef {
        name: "backup_checkpoint_restart",
        kind: Kind::Bool,
        default: Some("true"),
        description: "restart failed tasks automatically from their checkpoint",
    },
    ParameterDef {
        name: "backup_restart_delay",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(7 * DAY),
        },
        default: Some("2m"),
        description: "wait before an automatic restart from a checkpoint",
    },
    ParameterDef {
        name: "backup_restart_max_attempts",
        kind: Kind::Integer { min: 0, max: 100 },
        default: Some("1"),
        description: "automatic restarts of one task at most",
    },
    ParameterDef {
        name: "backup_max_run_time",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(365 * DAY),
        },
        default: Some("0s"),
        description: "a backup job running longer is cancelled and not restarted; 0 = no limit",
    },
    ParameterDef {
        name: "backup_concurrency",
        kind: Kind::Integer { min: 0, max: 256 },
        default: Some("0"),
        description: "tasks run at once; 0 = as many as cores",
    },
    ParameterDef {
        name: "backup_compression",
        kind: Kind::Compression,
        default: Some("zstd:1"),
        description: "compression of backup data: none or zstd:1..19",
    },
    ParameterDef {
        name: "backup_retry_delay",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(3600),
        },
        default: Some("5s"),
        description: "wait between the retries of a retryable error",
    },
    ParameterDef {
        name: "backup_skip_unreadable_files",
        kind: Kind::Bool,
        default: Some("false"),
        description: "list and skip files the server cannot read instead of failing the task",
    },
    ParameterDef {
        name: "backup_ignore_checksum_failures",
        kind: Kind::Bool,
        default: Some("false"),
        description: "keep backing up a PostgreSQL cluster whose pages fail their checksum \
                      (they are named in the task's COMMENT) instead of failing the task",
    },
    ParameterDef {
        name: "backup_gc_grace_period",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(7 * DAY),
        },
        default: Some("1h"),
        description: "how long garbage the collector marked waits before it is deleted; 0 \
                      deletes at once when no backup runs",
    },
    ParameterDef {
        name: "backup_gc_repack_threshold",
        kind: Kind::Integer { min: 0, max: 100 },
        default: Some("50"),
        description: "the collector repacks a pack whose live bytes are under this percentage \
                      of its size; 0 never repacks",
    },
    ParameterDef {
        name: "backup_delete_policy_interval",
        kind: Kind::Duration {
            min: secs(1),
            max: secs(7 * DAY),
        },
        default: Some("1h"),
        description: "how often a delete policy runs its cleanup (DELETE OBSOLETE BACKUP)",
    },
    ParameterDef {
        name: "plan_notify_retry_time",
        kind: Kind::Duration {
            min: secs(1),
            max: secs(DAY),
        },
        default: Some("10m"),
        description: "how long a plan's webhook delivery is retried (with backoff) before it is \
                      recorded FAILED",
    },
    ParameterDef {
        name: "_backup_clock_offset",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(3650 * DAY),
        },
        default: Some("0s"),
        description: "hidden, for tests: moves the clock of retention and of the delete policy \
                      forward; never set it in production",
    },
    ParameterDef {
        name: "pg_archive_timeout",
        kind: Kind::Duration {
            min: secs(1),
            max: secs(86400),
        },
        default: Some("60s"),
        description: "how long a PostgreSQL backup waits for the WAL it needs to be archived",
    },
    ParameterDef {
        name: "log_archive_checkpoint_interval",
        kind: Kind::Duration {
            min: secs(1),
            max: secs(3600),
        },
        default: Some("120s"),
        description: "how often an archive round advances its checkpoint",
    },
    ParameterDef {
        name: "log_segment_quiet_time",
        kind: Kind::Duration {
            min: Duration::from_millis(100),
            max: secs(DAY),
        },
        default: Some("10s"),
        description: "a log segment unchanged this long is closed",
    },
    ParameterDef {
        name: "archive_lag_target",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(DAY),
        },
        default: Some("120s"),
        description: "longest time a closed segment may wait before it is archived",
    },
    ParameterDef {
        name: "allowed_paths",
        kind: Kind::PathList,
        default: Some(""),
        description: "folders operators may restore into and name as a second destination \
            (comma-separated; admins are not limited)",
    },
    ParameterDef {
        name: "pg_tool_path",
        kind: Kind::PathList,
        default: Some(""),
        description: "the backstop executable a restored PostgreSQL cluster's restore_command \
            runs (it must be executable by PostgreSQL's account); '' = this server's own",
    },
    ParameterDef {
        name: "pg_tool_password_file",
        kind: Kind::PathList,
        default: Some(""),
        description: "the password file a restored PostgreSQL cluster's restore_command reads \
            (--password-file; readable by PostgreSQL's account); '' = its environment's \
            BACKSTOP_PASSWORD",
    },
    ParameterDef {
        name: "max_connections",
        kind: Kind::Integer {
            min: 1,
            max: 10_000,
        },
        default: Some("100"),
        description: "client connections served at once; one more is refused with 53300",
    },
    ParameterDef {
        name: "authentication_timeout",
        kind: Kind::Duration {
            min: secs(1),
            max: secs(600),
        },
        default: Some("1m"),
        description: "a client that has not logged in by then is disconnected",
    },
    ParameterDef {
        name: "idle_session_timeout",
        kind: Kind::Duration {
            min: secs(0),
            max: secs(7 * DAY),
        },
        default: Some("0"),
        description: "a session that sends nothing for this long is disconnected (57P05); 0 = \
                      never",
    },
    ParameterDef {
        name: "max_statement_size",
        kind: Kind::Size {
            min: 1024,
            max: 1 << 30,
        },
        default: Some("1MB"),
        description: "longest statement text accepted; a longer one is refused with 54000",
    },
    ParameterDef {
        name: "backup_net_limit",
        kind: Kind::Size { min: 0, max: TB },
        default: Some("0"),
        description: "bytes per second written to a destination; 0 = no limit",
    },
];

/// Names that mean another parameter (OceanBase 3.x spelling).
const ALIASES: &[(&str, &str)] = &[("backup_dest", "data_backup_dest")];

pub fn lookup(name: &str) -> Option<&'static ParameterDef> {
    let name = name.to_ascii_lowercase();
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name.as_str(), |(_, target)| target);
    PARAMETERS.iter().find(|p| p.name == canonical)
}

/// A refused value, with what would have been accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    pub message: String,
}

fn invalid(def: &ParameterDef, value: &str, accepted: String) -> InvalidValue {
    InvalidValue {
        message: format!(
            "invalid value '{value}' for parameter {}: accepted {accepted}",
            def.name
        ),
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim().to_ascii_lowercase();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "second" | "seconds" => number,
        "ms" => number / 1000.0,
        "m" | "min" | "minute" | "minutes" => number * 60.0,
        "h" | "hour" | "hours" => number * 3600.0,
        "d" | "day" | "days" => number * 86400.0,
        _ => return None,
    };
    (seconds <= 1e12).then(|| Duration::from_secs_f64(seconds))
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(DAY) {
        format!("{}d", s / DAY)
    } else if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_uppercase();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    let bytes = number * factor as f64;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

pub fn format_size(bytes: u64) -> String {
    for (unit, factor) in [
        ("TB", 1u64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
    ] {
        if bytes != 0 && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

/// Checks `value` for `def` and returns its canonical spelling.
pub fn normalize(def: &ParameterDef, value: &str) -> Result<String, InvalidValue> {
    match def.kind {
        Kind::Duration { min, max } => {
            let accepted = format!(
                "a duration from {} to {} (e.g. 30s, 2m, 1h)",
                format_duration(min),
                format_duration(max)
            );
            match parse_duration(value) {
                Some(d) if d >= min && d <= max => Ok(format_duration(d)),
                _ => Err(invalid(def, value, accepted)),
            }
        }
        Kind::Size { min, max } => {
            let accepted = format!(
                "a size from {} to {} (e.g. 32MB, 1GB)",
                format_size(min),
                format_size(max)
            );
            match parse_size(value) {
                Some(b) if b >= min && b <= max => Ok(format_size(b)),
                _ => Err(invalid(def, value, accepted)),
            }
        }
        Kind::Integer { min, max } => match value.trim().parse::<i64>() {
            Ok(v) if v >= min && v <= max => Ok(v.to_string()),
            _ => Err(invalid(
                def,
                value,
                format!("an integer from {min} to {max}"),
            )),
        },
        Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok("true".into()),
            "false" | "off" | "no" | "0" => Ok("false".into()),
            _ => Err(invalid(def, value, "true or false".into())),
        },
        Kind::Compression => {
            let v = value.trim().to_ascii_lowercase();
            let ok = v == "none"
                || v.strip_prefix("zstd:")
                    .and_then(|l| l.parse::<i32>().ok())
                    .is_some_and(|l| (1..=19).contains(&l));
            if ok {
                Ok(v)
            } else {
                Err(invalid(def, value, "none or zstd:1 to zstd:19".into()))
            }
        }
        Kind::DestState => match value.trim().to_ascii_uppercase().as_str() {
            s @ ("ENABLE" | "DEFER") => Ok(s.to_string()),
            _ => Err(invalid(def, value, "ENABLE or DEFER".into())),
        },
        Kind::DestinationUri => Ok(value.trim().to_string()),
        Kind::PathList => {
            let paths: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if paths
                .iter()
                .all(|p| p.starts_with('/') && !p.split('/').any(|c| c == ".."))
            {
                Ok(paths.join(","))
            } else {
                Err(invalid(
                    def,
                    value,
                    "absolute folder paths separated by commas, without '..', or '' for none"
                        .into(),
                ))
            }
        }
        Kind::ArchiveDest => ArchiveDest::parse(value)
            .map(|d| d.to_string())
            .map_err(|m| invalid(def, value, m)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Optional,
    Mandatory,
}

/// The attributes of `LOG_ARCHIVE_DEST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDest {
    pub location: String,
    pub binding: Binding,
    pub piece_switch_interval: Duration,
}

impl ArchiveDest {
    const ACCEPTED: &str = "'LOCATION=uri [BINDING=OPTIONAL|MANDATORY] \
        [PIECE_SWITCH_INTERVAL=1s..7d]' with attributes separated by spaces";

    pub fn parse(text: &str) -> Result<ArchiveDest, String> {
        let mut location = None;
        let mut binding = Binding::Optional;
        let mut interval = Duration::from_secs(DAY);
        for attribute in text.split_whitespace() {
            let (key, value) = attribute
                .split_once('=')
                .ok_or_else(|| Self::ACCEPTED.to_string())?;
            match key.to_ascii_uppercase().as_str() {
                "LOCATION" => location = Some(value.to_string()),
                "BINDING" => {
                    binding = match value.to_ascii_uppercase().as_str() {
                        "OPTIONAL" => Binding::Optional,
                        "MANDATORY" => Binding::Mandatory,
                        _ => return Err(Self::ACCEPTED.to_string()),
                    }
                }
                "PIECE_SWITCH_INTERVAL" => {
                    interval = parse_duration(value)
                        .filter(|d| *d >= secs(1) && *d <= secs(7 * DAY))
                        .ok_or_else(|| Self::ACCEPTED.to_string())?;
                }
                _ => return Err(Self::ACCEPTED.to_string()),
            }
        }
        let location = location.ok_or_else(|| Self::ACCEPTED.to_string())?;
        Ok(ArchiveDest {
            location,
            binding,
            piece_switch_interval: interval,
        })
    }
}

impl std::fmt::Display for ArchiveDest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let binding = match self.binding {
            Binding::Optional => "OPTIONAL",
            Binding::Mandatory => "MANDATORY",
        };
        write!(
            f,
            "LOCATION={} BINDING={binding} PIECE_SWITCH_INTERVAL={}",
            self.location,
            format_duration(self.piece_switch_interval)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_canonical() {
        let def = lookup("backup_checkpoint_interval").unwrap();
        assert_eq!(normalize(def, "90").unwrap(), "90s");
        assert_eq!(normalize(def, "2m").unwrap(), "2m");
        assert_eq!(normalize(def, "3600s").unwrap(), "1h");
        assert!(
            normalize(def, "0s")
                .unwrap_err()
                .message
                .contains("from 1s to 1d")
        );
        assert!(normalize(def, "soon").is_err());
    }

    #[test]
    fn sizes_and_integers_check_their_range() {
        assert_eq!(
            normalize(lookup("backup_checkpoint_min_bytes").unwrap(), "32mb").unwrap(),
            "32MB"
        );
        assert!(normalize(lookup("backup_restart_max_attempts").unwrap(), "101").is_err());
        assert_eq!(
            normalize(lookup("backup_compression").unwrap(), "ZSTD:3").unwrap(),
            "zstd:3"
        );
        assert!(normalize(lookup("backup_compression").unwrap(), "zstd:30").is_err());
    }

    #[test]
    fn backup_dest_is_an_alias() {
        assert_eq!(lookup("BACKUP_DEST").unwrap().name, "data_backup_dest");
        assert!(lookup("no_such_parameter").is_none());
    }

    #[test]
    fn archive_dest_attributes() {
        let d =
            ArchiveDest::parse("LOCATION=file:///a binding=mandatory PIECE_SWITCH_INTERVAL=10s")
                .unwrap();
        assert_eq!(d.binding, Binding::Mandatory);
        assert_eq!(d.piece_switch_interval, secs(10));
        assert_eq!(ArchiveDest::parse(&d.to_string()).unwrap(), d);
        assert!(ArchiveDest::parse("BINDING=OPTIONAL").is_err());
        assert!(ArchiveDest::parse("LOCATION=file:///a COLOR=red").is_err());
    }
}
