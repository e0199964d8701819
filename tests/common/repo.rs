//! What a destination holds, as the deletion tests account for it.

use std::path::Path;

/// Bytes of packs, index files and manifest segments in a destination.
pub fn stored(dest: &Path) -> u64 {
    fn walk(dir: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(Result::ok)
            .map(|e| {
                let meta = e.metadata().unwrap();
                if meta.is_dir() {
                    walk(&e.path())
                } else {
                    meta.len()
                }
            })
            .sum()
    }
    ["packs", "index", "manifests"]
        .iter()
        .map(|d| walk(&dest.join(d)))
        .sum()
}

/// The bytes a delete job's collection of `dest` found live, from the job's COMMENT.
pub fn live_bytes_in(comment: &str, dest: &Path) -> u64 {
    let prefix = format!("collector in file://{}: ", dest.display());
    comment
        .split("; ")
        .skip_while(|part| !part.starts_with(&prefix))
        .find_map(|part| part.strip_suffix(" bytes live"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no live bytes for {} in {comment}", dest.display()))
}
