//! A statement as the audit trail keeps it: every password replaced by `********`, the
//! credentials of every URI masked. Never the text the client typed.

use super::ast::{ArchiveStatement, RestoreStatement, Statement, UserStatement};

const HIDDEN: &str = "********";

/// Whether a statement is audited: every one that changes anything, except the archive's own
/// traffic (`PUSH`/`GET ARCHIVELOG`, one per log segment, recorded in the archive views).
pub fn is_audited(statement: &Statement) -> bool {
    !matches!(
        statement,
        Statement::Wait(_)
            | Statement::Restore(RestoreStatement::RestorePreview { .. })
            | Statement::Archive(
                ArchiveStatement::PushArchivelog { .. }
                    | ArchiveStatement::GetArchivelog { .. }
                    | ArchiveStatement::ReceiveArchivelog { .. }
                    | ArchiveStatement::SendArchivelog { .. }
            )
    )
}

/// The statement's text for the audit trail.
pub fn audit_text(statement: &Statement) -> String {
    let masked = match statement {
        Statement::User(user) => Statement::User(without_passwords(user)),
        other => other.clone(),
    };
    mask_literals(&masked.to_string())
}

fn without_passwords(statement: &UserStatement) -> UserStatement {
    use UserStatement::*;
    let hidden = || HIDDEN.to_string();
    match statement.clone() {
        CreateUser { name, role, .. } => CreateUser {
            name,
            password: hidden(),
            role,
        },
        AlterUser {
            name,
            password,
            role,
        } => AlterUser {
            name,
            password: password.map(|_| hidden()),
            role,
        },
        SetEncryption { only, .. } => SetEncryption {
            password: hidden(),
            only,
        },
        SetDecryption { passwords } => SetDecryption {
            passwords: passwords.iter().map(|_| hidden()).collect(),
        },
        AddBackupPassword { at, .. } => AddBackupPassword {
            password: hidden(),
            existing: hidden(),
            at,
        },
        DropBackupPassword { at, .. } => DropBackupPassword {
            password: hidden(),
            at,
        },
        ChangeBackupPassword { at, .. } => ChangeBackupPassword {
            old: hidden(),
            new: hidden(),
            at,
        },
        other @ DropUser { .. } => other,
    }
}

/// `text` with the credentials of every URI in a quoted literal masked (`user:***@`,
/// `secret_key=***`).
pub fn mask_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('\'') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        // The literal ends at a quote that is not doubled.
        let mut end = None;
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                end = Some(i);
                break;
            }
            i += 1;
        }
        let Some(end) = end else {
            out.push_str(&crate::catalog::mask_secrets(rest));
            return out;
        };
        out.push_str(&crate::catalog::mask_secrets(&rest[..end]));
        out.push('\'');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audited(sql: &str) -> String {
        match crate::sql::parse(sql).unwrap().pop().unwrap() {
            crate::sql::Parsed::Backstop(command) => audit_text(&command.statement),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passwords_and_uri_credentials_never_reach_the_trail() {
        for (sql, secret) in [
            ("CREATE USER u PASSWORD 'hunter2'", "hunter2"),
            ("ALTER USER u PASSWORD 'hunter2'", "hunter2"),
            ("SET ENCRYPTION ON IDENTIFIED BY 'hunter2' ONLY", "hunter2"),
            ("SET DECRYPTION IDENTIFIED BY 'a1', 'hunter2'", "hunter2"),
            (
                "ALTER SYSTEM ADD BACKUP PASSWORD 'hunter2' IDENTIFIED BY 'old'",
                "hunter2",
            ),
            (
                "ALTER SYSTEM CHANGE BACKUP PASSWORD 'old' TO 'hunter2'",
                "hunter2",
            ),
            ("ALTER SYSTEM DROP BACKUP PASSWORD 'hunter2'", "hunter2"),
            (
                "CREATE TENANT pg SOURCE = 'postgres://backup:hunter2@db:5432/app'",
                "hunter2",
            ),
        ] {
            let text = audited(sql);
            assert!(!text.contains(secret), "{sql} -> {text}");
            assert!(text.contains("***"), "{sql} -> {text}");
        }
        assert_eq!(
            mask_literals("CREATE VIEW v AS SELECT 'it''s', 'postgres://u:pw@h/d' AS x"),
            "CREATE VIEW v AS SELECT 'it''s', 'postgres://u:***@h/d' AS x"
        );
        assert!(is_audited(
            &match crate::sql::parse("ALTER SYSTEM BACKUP DATABASE")
                .unwrap()
                .pop()
                .unwrap()
            {
                crate::sql::Parsed::Backstop(c) => c.statement,
                _ => unreachable!(),
            }
        ));
    }
}
