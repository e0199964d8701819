//! A directory tenant's log source: a folder in which an application writes log segments, one
//! file each, named so that name order is write order (as PostgreSQL names WAL).
//!
//! A segment is closed, and may be archived, once a segment with a later name exists or once it
//! has not been written for the quiet time (`log_segment_quiet_time`). Hidden files (a leading
//! `.`) and anything that is not a regular file are not segments.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A segment that is complete and can be archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSegment {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    /// When it was last written, in nanoseconds since the Unix epoch: the time it covers up to.
    pub close_scn: i64,
}

/// The closed segments in `folder`, in name order. A name that is not UTF-8 is skipped: segment
/// names travel through SQL and views.
pub fn closed_segments(
    folder: &Path,
    quiet_time: Duration,
    now: SystemTime,
) -> io::Result<Vec<ClosedSegment>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified()?;
        segments.push((name, entry.path(), meta.len(), modified));
    }
    segments.sort_by(|a, b| a.0.cmp(&b.0));
    let newest = segments.len().saturating_sub(1);
    Ok(segments
        .into_iter()
        .enumerate()
        .filter(|(i, (_, _, _, modified))| {
            *i < newest || now.duration_since(*modified).unwrap_or_default() >= quiet_time
        })
        .map(|(_, (name, path, size, modified))| ClosedSegment {
            name,
            path,
            size,
            close_scn: modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64),
        })
        .collect())
}

/// The names missing between two segments, at most `limit` of them. Two kinds of names say
/// where a gap is:
/// * PostgreSQL WAL segments (24 hex digits: timeline, then the segment number in two halves).
///   `next_size` is the size of the later segment, PostgreSQL's `wal_segment_size`, which
///   decides where the low half wraps (16 MiB when the size is not a valid one). Segments of
///   different timelines never make a gap: a promotion starts a new timeline mid-log.
/// * Names that differ only in a decimal counter: `log-000007` after `log-000004` misses
///   `log-000005` and `log-000006`.
///
/// Other names say nothing about gaps.
pub fn missing_between(previous: &str, next: &str, next_size: u64, limit: usize) -> Vec<String> {
    match (WalName::parse(previous), WalName::parse(next)) {
        (Some(p), Some(n)) => return p.missing_before(n, next_size, limit),
        (None, None) => {}
        _ => return vec![],
    }
    let (Some((p_head, p_n, p_tail)), Some((n_head, n_n, n_tail))) =
        (counter(previous), counter(next))
    else {
        return vec![];
    };
    if p_head != n_head || p_tail != n_tail || p_n.len() != n_n.len() {
        return vec![];
    }
    let (Ok(a), Ok(b)) = (p_n.parse::<u64>(), n_n.parse::<u64>()) else {
        return vec![];
    };
    let width = p_n.len();
    (a.saturating_add(1)..b)
        .take(limit)
        .map(|i| format!("{p_head}{i:0width$}{p_tail}"))
        .collect()
}

/// A PostgreSQL WAL segment file name, `TTTTTTTTLLLLLLLLSSSSSSSS` in upper-case hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WalName {
    timeline: u32,
    log: u32,
    seg: u32,
}

impl WalName {
    fn parse(name: &str) -> Option<WalName> {
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        if name.len() != 24 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F')) {
            return None;
        }
        Some(WalName {
            timeline: hex(&name[..8])?,
            log: hex(&name[8..16])?,
            seg: hex(&name[16..])?,
        })
    }

    /// The segments between `self` and `next` on the same timeline, for segments of `size`.
    fn missing_before(self, next: WalName, size: u64, limit: usize) -> Vec<String> {
        let size = if size.is_power_of_two() && (1 << 20..=1 << 30).contains(&size) {
            size
        } else {
            16 << 20
        };
        let per_log = (1u64 << 32) / size;
        if self.timeline != next.timeline
            || u64::from(self.seg) >= per_log
            || u64::from(next.seg) >= per_log
        {
            return vec![];
        }
        let number = |w: WalName| u64::from(w.log) * per_log + u64::from(w.seg);
        (number(self) + 1..number(next))
            .take(limit)
            .map(|n| {
                format!(
                    "{:08X}{:08X}{:08X}",
                    self.timeline,
                    n / per_log,
                    n % per_log
                )
            })
            .collect()
    }
}

/// Splits a name around its last run of decimal digits.
fn counter(name: &str) -> Option<(&str, &str, &str)> {
    let end = name.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = name[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    Some((&name[..start], &name[start..end], &name[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_gaps_follow_postgresql_segment_numbering() {
        const MIB16: u64 = 16 << 20;
        assert!(
            missing_between(
                "000000010000000000000009",
                "00000001000000000000000A",
                MIB16,
                10
            )
            .is_empty()
        );
        assert_eq!(
            missing_between(
                "000000010000000000000009",
                "00000001000000000000000C",
                MIB16,
                10
            ),
            vec!["00000001000000000000000A", "00000001000000000000000B"]
        );
        // With 16 MiB segments the low half wraps after FF; with 1 GiB ones after 03.
        assert!(
            missing_between(
                "0000000100000000000000FF",
                "000000010000000100000000",
                MIB16,
                10
            )
            .is_empty()
        );
        assert_eq!(
            missing_between(
                "0000000100000000000000FE",
                "000000010000000100000000",
                MIB16,
                10
            ),
            vec!["0000000100000000000000FF"]
        );
        assert!(
            missing_between(
                "000000010000000000000003",
                "000000010000000100000000",
                1 << 30,
                10
            )
            .is_empty()
        );
        // A new timeline, a history file, a backup label: no gap.
        assert!(
            missing_between(
                "000000010000000000000005",
                "000000020000000000000009",
                MIB16,
                10
            )
            .is_empty()
        );
        assert!(
            missing_between("000000010000000000000005", "00000002.history", 100, 10).is_empty()
        );
        assert!(
            missing_between(
                "000000010000000000000005",
                "000000010000000000000007.00000028.backup",
                300,
                10
            )
            .is_empty()
        );
    }

    #[test]
    fn gaps_are_found_only_between_names_that_differ_in_their_counter() {
        assert_eq!(
            missing_between("log-000004.txt", "log-000007.txt", 0, 10),
            vec!["log-000005.txt", "log-000006.txt"]
        );
        assert!(missing_between("log-000004", "log-000005", 0, 10).is_empty());
        assert!(missing_between("a-1", "b-3", 0, 10).is_empty());
        assert!(missing_between("x", "y", 0, 10).is_empty());
        assert_eq!(missing_between("9", "99999", 0, 10), Vec::<String>::new());
        assert_eq!(missing_between("s01", "s09", 0, 2), vec!["s02", "s03"]);
    }

    #[test]
    fn every_segment_but_the_newest_is_closed_and_the_newest_once_quiet() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["0002", "0001", "0003", ".partial"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("0009-dir")).unwrap();
        let now = SystemTime::now();
        let names = |quiet: Duration, at: SystemTime| -> Vec<String> {
            closed_segments(dir.path(), quiet, at)
                .unwrap()
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(names(Duration::from_secs(10), now), vec!["0001", "0002"]);
        assert_eq!(
            names(Duration::from_secs(10), now + Duration::from_secs(11)),
            vec!["0001", "0002", "0003"]
        );
        let first = &closed_segments(dir.path(), Duration::ZERO, now).unwrap()[0];
        assert_eq!(first.size, 4);
        assert!(first.close_scn > 0);
    }
}
