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

/// The names missing between two segments whose names differ only in a counter: `log-000007`
/// after `log-000004` misses `log-000005` and `log-000006`. Names that are not of that form say
/// nothing about gaps. At most `limit` names are listed.
pub fn missing_between(previous: &str, next: &str, limit: usize) -> Vec<String> {
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
    fn gaps_are_found_only_between_names_that_differ_in_their_counter() {
        assert_eq!(
            missing_between("log-000004.txt", "log-000007.txt", 10),
            vec!["log-000005.txt", "log-000006.txt"]
        );
        assert!(missing_between("log-000004", "log-000005", 10).is_empty());
        assert!(missing_between("a-1", "b-3", 10).is_empty());
        assert!(missing_between("x", "y", 10).is_empty());
        assert_eq!(missing_between("9", "99999", 10), Vec::<String>::new());
        assert_eq!(missing_between("s01", "s09", 2), vec!["s02", "s03"]);
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
