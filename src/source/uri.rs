//! Source URIs: `dir:///abs/path` names a directory tree, a log folder or a restore target. This
//! is the one place that reads them.

use std::path::PathBuf;

/// The directory a `dir://` URI names; `None` when the URI is not one. The path is as written:
/// whether it must be absolute or exist is for the caller to say.
pub fn dir_path(uri: &str) -> Option<PathBuf> {
    uri.strip_prefix("dir://").map(PathBuf::from)
}

/// The directory a `dir://` URI names, or the text itself when it is a bare path (log folders
/// registered before URIs were required).
pub fn dir_path_or_plain(uri: &str) -> PathBuf {
    dir_path(uri).unwrap_or_else(|| PathBuf::from(uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_uris_name_their_path() {
        assert_eq!(dir_path("dir:///srv/app"), Some(PathBuf::from("/srv/app")));
        assert_eq!(dir_path("file:///srv/app"), None);
        assert_eq!(dir_path_or_plain("/srv/log"), PathBuf::from("/srv/log"));
    }
}
