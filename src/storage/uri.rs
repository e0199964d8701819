//! Destination URIs: the one parser of `file:///abs/path` (and the refusal of what this release
//! cannot write to), and the masking of the secrets a URI may carry, for every view, log line,
//! NOTICE and error that shows one.

use std::path::PathBuf;

/// Where backups go, as a destination URI names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `file:///abs/path`: a directory on this machine.
    File(PathBuf),
}

/// Why a URI names no destination this release can use; the URI is kept with its secrets
/// masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("'{uri}' is not a destination URI: {accepted}")]
    Malformed { uri: String, accepted: &'static str },
    #[error("destination '{uri}': {scheme}:// destinations are not supported by this release")]
    Unsupported { uri: String, scheme: &'static str },
}

impl Destination {
    pub fn parse(uri: &str) -> Result<Destination, UriError> {
        if let Some(path) = uri.strip_prefix("file://") {
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(UriError::Malformed {
                    uri: mask_secrets(uri),
                    accepted: "write file:///absolute/path",
                });
            }
            return Ok(Destination::File(path));
        }
        if uri.starts_with("s3://") {
            return Err(UriError::Unsupported {
                uri: mask_secrets(uri),
                scheme: "s3",
            });
        }
        Err(UriError::Malformed {
            uri: mask_secrets(uri),
            accepted: "accepted: file:///absolute/path",
        })
    }
}

/// Hides the secrets of a destination URI (`access_key`, `secret`, `password`, the password of
/// `user:password@`) so that it can be shown in a view or a log line.
pub fn mask_secrets(uri: &str) -> String {
    let mut out = uri.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            out.replace_range(start..scheme_end + 3 + at, "***");
        }
    }
    let Some(q) = out.find('?') else { return out };
    let (base, query) = out.split_at(q + 1);
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if is_secret_key(k) => format!("{k}=***"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}{}", masked.join("&"))
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["key", "secret", "password", "token"]
        .iter()
        .any(|s| key.contains(s))
        && key != "access_id"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked() {
        assert_eq!(
            mask_secrets("s3://b/p?endpoint=http://h&access_id=AK&access_key=SK"),
            "s3://b/p?endpoint=http://h&access_id=AK&access_key=***"
        );
        assert_eq!(
            mask_secrets("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(mask_secrets("file:///backup"), "file:///backup");
    }

    #[test]
    fn only_absolute_file_uris_are_destinations_and_refusals_hide_secrets() {
        assert_eq!(
            Destination::parse("file:///backup"),
            Ok(Destination::File("/backup".into()))
        );
        assert!(matches!(
            Destination::parse("file://relative"),
            Err(UriError::Malformed { .. })
        ));
        let e = Destination::parse("s3://b/p?access_id=AK&access_key=SK").unwrap_err();
        assert!(matches!(e, UriError::Unsupported { scheme: "s3", .. }));
        assert!(!e.to_string().contains("SK"), "{e}");
    }
}
