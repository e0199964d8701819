//! What of a PostgreSQL data directory a backup copies: PostgreSQL's own rules (those of
//! `pg_basebackup`, `src/backend/backup/basebackup.c`), applied while the tree is walked.
//!
//! * The contents of `pg_wal`, `pg_dynshmem`, `pg_notify`, `pg_replslot`, `pg_serial`,
//!   `pg_snapshots`, `pg_stat_tmp` and `pg_subtrans` are left out; the folders themselves are
//!   kept, empty, so that the restored cluster starts.
//! * `postmaster.pid`, `postmaster.opts`, a stale `backup_label` or `tablespace_map`,
//!   `backup_manifest`, `current_logfiles`, `postgresql.auto.conf.tmp`, `pg_internal.init`
//!   (anywhere), `recovery.signal` and `standby.signal` are left out.
//! * Temporary files and folders (`pgsql_tmp*`) anywhere, and temporary relations (`t<n>_<n>`)
//!   in database folders, are left out.
//! * An unlogged relation keeps only its init fork: its other forks are reset at recovery.
//! * `pg_tblspc/<oid>` symlinks are followed: a tablespace's contents are stored under that path
//!   and restored to a mapped location.

/// Folders whose contents are never copied.
const CONTENTS_EXCLUDED: &[&[u8]] = &[
    b"pg_wal",
    b"pg_xlog",
    b"pg_dynshmem",
    b"pg_notify",
    b"pg_replslot",
    b"pg_serial",
    b"pg_snapshots",
    b"pg_stat_tmp",
    b"pg_subtrans",
];

/// Files of the data directory's top level that are never copied.
const TOP_FILES_EXCLUDED: &[&[u8]] = &[
    b"postmaster.pid",
    b"postmaster.opts",
    b"backup_label",
    b"backup_label.old",
    b"tablespace_map",
    b"tablespace_map.old",
    b"backup_manifest",
    b"current_logfiles",
    b"postgresql.auto.conf.tmp",
    b"recovery.signal",
    b"standby.signal",
];

const TEMP_PREFIX: &[u8] = b"pgsql_tmp";

/// Whether the walk follows the symlink at `path` (relative to the data directory): the
/// tablespace links `pg_tblspc/<oid>`.
pub fn follows_symlink(path: &[u8]) -> bool {
    path.strip_prefix(b"pg_tblspc/").is_some_and(is_digits)
}

/// Removes from `names` (the children of folder `dir`, relative to the data directory) every
/// entry a backup leaves out.
pub fn prune(dir: &[u8], names: &mut Vec<Vec<u8>>) {
    if CONTENTS_EXCLUDED.contains(&dir) {
        names.clear();
        return;
    }
    let top = dir.is_empty();
    let database = is_database_folder(dir);
    let unlogged: Vec<Vec<u8>> = if database {
        names
            .iter()
            .filter_map(|n| n.strip_suffix(b"_init"))
            .filter(|base| is_digits(base))
            .map(<[u8]>::to_vec)
            .collect()
    } else {
        Vec::new()
    };
    names.retain(|name| {
        if name.starts_with(TEMP_PREFIX) || name.as_slice() == b"pg_internal.init" {
            return false;
        }
        if top && TOP_FILES_EXCLUDED.contains(&name.as_slice()) {
            return false;
        }
        if database {
            if is_temp_relation(name) {
                return false;
            }
            if let Some(relation) = relation_of(name)
                && relation.fork != Fork::Init
                && unlogged.iter().any(|u| u.as_slice() == relation.node)
            {
                return false;
            }
        }
        true
    });
}

/// `base/<oid>`, or `pg_tblspc/<oid>/<version folder>/<oid>`.
fn is_database_folder(dir: &[u8]) -> bool {
    let parts: Vec<&[u8]> = dir.split(|&b| b == b'/').collect();
    match parts.as_slice() {
        [b"base", db] => is_digits(db),
        [b"pg_tblspc", ts, _version, db] => is_digits(ts) && is_digits(db),
        _ => false,
    }
}

/// Whether `dir` holds relation files whose pages carry checksums: `global`, a database folder.
pub fn holds_relations(dir: &[u8]) -> bool {
    dir == b"global" || is_database_folder(dir)
}

fn is_digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// `t<digits>_<digits>` with an optional fork and segment suffix.
fn is_temp_relation(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"t") else {
        return false;
    };
    let Some((backend, relation)) = split_once(rest, b'_') else {
        return false;
    };
    is_digits(backend) && relation_of(relation).is_some()
}

fn split_once(s: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == at)?;
    Some((&s[..i], &s[i + 1..]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fork {
    Main,
    FreeSpace,
    Visibility,
    Init,
}

/// A relation file's name taken apart: `<node>[_<fork>][.<segment>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelationFile<'a> {
    pub node: &'a [u8],
    pub fork: Fork,
    pub segment: u32,
}

/// The parts of a relation file's name, or `None` for any other file.
pub fn relation_of(name: &[u8]) -> Option<RelationFile<'_>> {
    let (stem, segment) = match name.iter().position(|&b| b == b'.') {
        Some(i) => {
            let digits = &name[i + 1..];
            if !is_digits(digits) {
                return None;
            }
            let segment = std::str::from_utf8(digits).ok()?.parse().ok()?;
            (&name[..i], segment)
        }
        None => (name, 0),
    };
    let (node, fork) = match split_once(stem, b'_') {
        Some((node, b"fsm")) => (node, Fork::FreeSpace),
        Some((node, b"vm")) => (node, Fork::Visibility),
        Some((node, b"init")) => (node, Fork::Init),
        Some(_) => return None,
        None => (stem, Fork::Main),
    };
    is_digits(node).then_some(RelationFile {
        node,
        fork,
        segment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pruned(dir: &str, names: &[&str]) -> Vec<String> {
        let mut names: Vec<Vec<u8>> = names.iter().map(|n| n.as_bytes().to_vec()).collect();
        prune(dir.as_bytes(), &mut names);
        names
            .into_iter()
            .map(|n| String::from_utf8(n).unwrap())
            .collect()
    }

    #[test]
    fn the_top_level_keeps_folders_and_drops_runtime_files() {
        assert_eq!(
            pruned(
                "",
                &[
                    "PG_VERSION",
                    "base",
                    "pg_wal",
                    "postmaster.pid",
                    "postmaster.opts",
                    "backup_label",
                    "postgresql.conf",
                    "pgsql_tmp",
                    "standby.signal",
                ]
            ),
            ["PG_VERSION", "base", "pg_wal", "postgresql.conf"]
        );
        assert!(pruned("pg_wal", &["000000010000000000000001", "archive_status"]).is_empty());
        assert!(pruned("pg_replslot", &["slot"]).is_empty());
        // A file named like a runtime file below the top level is the user's.
        assert_eq!(pruned("base/5", &["postmaster.pid"]), ["postmaster.pid"]);
    }

    #[test]
    fn database_folders_drop_temporary_relations_and_unlogged_main_forks() {
        assert_eq!(
            pruned(
                "base/16384",
                &[
                    "1259",
                    "1259_fsm",
                    "t3_16400",
                    "t3_16400_vm",
                    "16500",
                    "16500.1",
                    "16500_fsm",
                    "16500_init",
                    "pg_internal.init",
                    "PG_VERSION",
                    "pg_filenode.map",
                ]
            ),
            [
                "1259",
                "1259_fsm",
                "16500_init",
                "PG_VERSION",
                "pg_filenode.map"
            ]
        );
        assert_eq!(
            pruned(
                "pg_tblspc/16390/PG_15_202209061/5",
                &["16500", "16500_init", "9"]
            ),
            ["16500_init", "9"]
        );
    }

    #[test]
    fn relation_names_are_taken_apart() {
        assert_eq!(
            relation_of(b"16500_vm.3"),
            Some(RelationFile {
                node: b"16500",
                fork: Fork::Visibility,
                segment: 3
            })
        );
        assert_eq!(relation_of(b"pg_control"), None);
        assert_eq!(relation_of(b"16500_xx"), None);
        assert_eq!(relation_of(b"16500."), None);
        assert!(follows_symlink(b"pg_tblspc/16390"));
        assert!(!follows_symlink(b"pg_tblspc/16390/x"));
        assert!(!follows_symlink(b"pg_wal"));
        assert!(holds_relations(b"global") && holds_relations(b"base/1"));
        assert!(!holds_relations(b"pg_xact"));
    }
}
