//! Tokenizes a whole query string once with sqlparser's PostgreSQL tokenizer and cuts it into
//! statements at `;`. Every token keeps where it was written, as the 1-based character offset
//! PostgreSQL reports in an ErrorResponse, and its original text for messages.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::ParseError;

/// A token that is not whitespace or a comment, with where it stands in the query string.
#[derive(Debug)]
pub(super) struct Lexeme<'a> {
    pub token: Token,
    /// 1-based character offset in the query string.
    pub position: usize,
    /// Byte offset in the query string.
    pub byte: usize,
    /// The token exactly as written.
    pub text: &'a str,
}

/// Where a statement stops: at its `;`, or at the end of the query string.
#[derive(Debug, Clone, Copy)]
pub(super) struct End<'a> {
    pub position: usize,
    /// The `;` as written, or `None` at the end of input.
    pub text: Option<&'a str>,
}

/// One statement of the query string.
pub(super) struct Piece<'a> {
    pub lexemes: &'a [Lexeme<'a>],
    /// The statement's text from its first token to its last, without the `;`.
    pub text: &'a str,
    pub end: End<'a>,
}

/// Tokenizes `sql`, dropping whitespace and comments.
pub(super) fn lex(sql: &str) -> Result<Vec<Lexeme<'_>>, ParseError> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|error| ParseError {
            message: format!("syntax error: {}", lower_first(&error.message)),
            position: Walker::new(sql).advance_to(error.location).chars + 1,
        })?;
    let mut walker = Walker::new(sql);
    let mut lexemes = Vec::with_capacity(tokens.len());
    for TokenWithSpan { token, span } in tokens {
        let start = walker.advance_to(span.start);
        let end = walker.advance_to(span.end);
        if !matches!(token, Token::Whitespace(_)) {
            lexemes.push(Lexeme {
                token,
                position: start.chars + 1,
                byte: start.bytes,
                text: &sql[start.bytes..end.bytes],
            });
        }
    }
    Ok(lexemes)
}

/// Cuts the tokens of `sql` into statements at every `;` token (a `;` inside a string or a
/// comment is part of that token), skipping empty statements.
pub(super) fn split<'a>(sql: &'a str, lexemes: &'a [Lexeme<'a>]) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, lexeme) in lexemes.iter().enumerate() {
        if lexeme.token == Token::SemiColon {
            let end = End {
                position: lexeme.position,
                text: Some(lexeme.text),
            };
            pieces.extend(piece(sql, &lexemes[start..i], end));
            start = i + 1;
        }
    }
    let end = End {
        position: sql.chars().count() + 1,
        text: None,
    };
    pieces.extend(piece(sql, &lexemes[start..], end));
    pieces
}

fn piece<'a>(sql: &'a str, lexemes: &'a [Lexeme<'a>], end: End<'a>) -> Option<Piece<'a>> {
    let (first, last) = (lexemes.first()?, lexemes.last()?);
    Some(Piece {
        lexemes,
        text: &sql[first.byte..last.byte + last.text.len()],
        end,
    })
}

fn lower_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Character and byte offsets of a point in the query string.
#[derive(Debug, Clone, Copy)]
struct Offset {
    chars: usize,
    bytes: usize,
}

/// Turns the tokenizer's line/column locations into offsets. Locations arrive in order, so one
/// forward walk over the string serves every token; lines and columns are counted as the
/// tokenizer counts them (a line ends at `\n`, a column is a character).
struct Walker<'a> {
    rest: std::str::CharIndices<'a>,
    line: u64,
    column: u64,
    at: Offset,
}

impl<'a> Walker<'a> {
    fn new(sql: &'a str) -> Self {
        Walker {
            rest: sql.char_indices(),
            line: 1,
            column: 1,
            at: Offset { chars: 0, bytes: 0 },
        }
    }

    fn advance_to(&mut self, target: Location) -> Offset {
        while (self.line, self.column) < (target.line, target.column) {
            let Some((byte, c)) = self.rest.next() else {
                break;
            };
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
            self.at = Offset {
                chars: self.at.chars + 1,
                bytes: byte + c.len_utf8(),
            };
        }
        self.at
    }
}
