//! Which statement a piece of SQL is, by its leading words. Each family module lists the leading
//! words of its statements as `Head`s; the longest head that matches picks the parser, and a
//! trailing `WAIT` is handled here once for every statement that starts a job.

use super::ast::{Command, Statement};
use super::cursor::{Cursor, Result};
use super::{
    archive, backup, backup_backup, delete, plan, restore, system_set, tenant, user, wait,
};

/// The fixed leading words of one statement and the parser of the rest of it.
pub(super) struct Head {
    /// Upper-case keywords, e.g. `["ALTER", "SYSTEM", "CANCEL", "BACKUP"]`.
    pub words: &'static [&'static str],
    /// Parses what follows `words`, leaving any trailing `WAIT` and the end to `parse_command`.
    pub parse: fn(&mut Cursor) -> Result<Statement>,
}

fn heads() -> impl Iterator<Item = &'static Head> {
    [
        tenant::HEADS,
        system_set::HEADS,
        backup::HEADS,
        archive::HEADS,
        backup_backup::HEADS,
        restore::HEADS,
        delete::HEADS,
        plan::HEADS,
        user::HEADS,
        wait::HEADS,
    ]
    .into_iter()
    .flatten()
}

/// Whether the statement is backstop's: its first two words begin one of our statements
/// (`ALTER SYSTEM`, `CREATE TENANT`, `SET ENCRYPTION`, ...). Anything else goes to DataFusion.
pub(super) fn is_backstop(cursor: &Cursor) -> bool {
    heads().any(|head| cursor.matching_keywords(&head.words[..2]) == 2)
}

pub(super) fn parse_command(cursor: &mut Cursor) -> Result<Command> {
    let head = route(cursor)?;
    let statement = (head.parse)(cursor)?;
    let wait = if statement.starts_job() {
        cursor.eat_keyword("WAIT")
    } else {
        if cursor.keyword_at(0).as_deref() == Some("WAIT") {
            let message = format!(
                "{} does not start a job, so it cannot WAIT",
                statement.name()
            );
            return Err(cursor.error_here(&message));
        }
        false
    };
    cursor.expect_end()?;
    Ok(Command { statement, wait })
}

/// Picks the longest head the statement begins with and consumes its words. When a longer head
/// matched further than any complete one, the statement stops short of it, and the error
/// names the words that would have continued it.
fn route(cursor: &mut Cursor) -> Result<&'static Head> {
    let complete = heads()
        .filter(|head| cursor.matching_keywords(head.words) == head.words.len())
        .max_by_key(|head| head.words.len());
    let partial_depth = heads()
        .map(|head| cursor.matching_keywords(head.words))
        .filter(|&depth| complete.is_none_or(|complete| depth > complete.words.len()))
        .max()
        .unwrap_or(0);
    let depth = complete.map_or(partial_depth, |head| head.words.len().max(partial_depth));
    for head in heads() {
        if head.words.len() > depth && cursor.matching_keywords(head.words) == depth {
            cursor.note_at(depth, head.words[depth]);
        }
    }
    cursor.advance(depth);
    match complete {
        Some(head) if head.words.len() == depth => Ok(head),
        _ => Err(cursor.expected(&[])),
    }
}
