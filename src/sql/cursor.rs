//! A cursor over one statement's tokens with the small pieces every statement family is made of:
//! keywords, `[=]`, strings, integers, names and tenant lists. It also builds syntax errors that
//! name the token found, its position and everything that would have been accepted there.

use std::num::IntErrorKind;

use datafusion::sql::sqlparser::tokenizer::{Token, Word};

use super::ParseError;
use super::ast::TenantScope;
use super::lexer::{End, Lexeme, Piece};

pub(super) type Result<T> = std::result::Result<T, ParseError>;

pub(super) struct Cursor<'a> {
    lexemes: &'a [Lexeme<'a>],
    pos: usize,
    end: End<'a>,
    /// Keywords looked for without success at token `tried_at`; a syntax error there lists them,
    /// so that the message says every word that could have come next, not just the last one.
    tried: Vec<&'static str>,
    tried_at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(piece: &Piece<'a>) -> Self {
        Cursor {
            lexemes: piece.lexemes,
            pos: 0,
            end: piece.end,
            tried: Vec::new(),
            tried_at: 0,
        }
    }

    /// The keyword (unquoted word, any case) `offset` tokens ahead, upper-cased.
    pub fn keyword_at(&self, offset: usize) -> Option<String> {
        match &self.lexemes.get(self.pos + offset)?.token {
            Token::Word(Word {
                value,
                quote_style: None,
                ..
            }) => Some(value.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// How many of `keywords` the next tokens spell, from the first on.
    pub fn matching_keywords(&self, keywords: &[&str]) -> usize {
        keywords
            .iter()
            .enumerate()
            .take_while(|(i, keyword)| self.keyword_at(*i).as_deref() == Some(**keyword))
            .count()
    }

    /// Records that `keyword` would have been accepted `offset` tokens ahead.
    pub fn note_at(&mut self, offset: usize, keyword: &'static str) {
        let at = self.pos + offset;
        if self.tried_at != at {
            self.tried.clear();
            self.tried_at = at;
        }
        if !self.tried.contains(&keyword) {
            self.tried.push(keyword);
        }
    }

    pub fn advance(&mut self, tokens: usize) {
        self.pos = (self.pos + tokens).min(self.lexemes.len());
    }

    /// Whether the next token is `keyword`, without consuming it.
    pub fn peek_keyword(&mut self, keyword: &'static str) -> bool {
        let found = self.keyword_at(0).as_deref() == Some(keyword);
        if !found {
            self.note_at(0, keyword);
        }
        found
    }

    /// Consumes the next token if it is `keyword`.
    pub fn eat_keyword(&mut self, keyword: &'static str) -> bool {
        let found = self.peek_keyword(keyword);
        if found {
            self.advance(1);
        }
        found
    }

    pub fn expect_keyword(&mut self, keyword: &'static str) -> Result<()> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.expected(&[]))
        }
    }

    /// Consumes whichever of `keywords` comes next and returns it.
    pub fn expect_one_of(&mut self, keywords: &[&'static str]) -> Result<&'static str> {
        for &keyword in keywords {
            if self.eat_keyword(keyword) {
                return Ok(keyword);
            }
        }
        Err(self.expected(&[]))
    }

    /// The optional `=` of `KEYWORD [=] value`.
    pub fn eat_eq(&mut self) {
        if self.peek_token() == Some(&Token::Eq) {
            self.advance(1);
        }
    }

    pub fn peek_token(&self) -> Option<&'a Token> {
        self.lexemes.get(self.pos).map(|lexeme| &lexeme.token)
    }

    /// The next token, if it directly follows the current one with no space between.
    pub fn adjacent_lexeme(&self) -> Option<&'a Lexeme<'a>> {
        let previous = self.lexemes.get(self.pos.checked_sub(1)?)?;
        let next = self.lexemes.get(self.pos)?;
        (previous.byte + previous.text.len() == next.byte).then_some(next)
    }

    /// The position of the next token (or of the statement's end), for errors about a value
    /// that is read first and judged afterwards.
    pub fn position(&self) -> usize {
        self.lexemes
            .get(self.pos)
            .map_or(self.end.position, |lexeme| lexeme.position)
    }

    /// A string literal: `'...'`, `E'...'` or `$$...$$`.
    pub fn parse_string(&mut self) -> Result<String> {
        let value = match self.peek_token() {
            Some(Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s)) => s.clone(),
            Some(Token::DollarQuotedString(s)) => s.value.clone(),
            _ => return Err(self.expected(&["a quoted string"])),
        };
        self.advance(1);
        Ok(value)
    }

    /// The bound parameter `$1` (of the extended protocol).
    pub fn expect_first_parameter(&mut self) -> Result<()> {
        match self.peek_token() {
            Some(Token::Placeholder(p)) if p == "$1" => {
                self.advance(1);
                Ok(())
            }
            _ => Err(self.expected(&["$1"])),
        }
    }

    /// A comma-separated list of string literals.
    pub fn parse_string_list(&mut self) -> Result<Vec<String>> {
        let mut values = vec![self.parse_string()?];
        while self.eat_comma() {
            values.push(self.parse_string()?);
        }
        Ok(values)
    }

    /// Whether a number, possibly negative, comes next.
    pub fn peek_number(&self) -> bool {
        let next = |offset: usize| self.lexemes.get(self.pos + offset).map(|l| &l.token);
        matches!(next(0), Some(Token::Number(..)))
            || matches!(
                (next(0), next(1)),
                (Some(Token::Minus), Some(Token::Number(..)))
            )
    }

    /// A number as written, with its sign: `42`, `-1.5`.
    pub fn parse_number(&mut self) -> Result<String> {
        self.take_number()
            .ok_or_else(|| self.expected(&["a number"]))
    }

    /// A 64-bit integer, possibly negative. Ranges are for the server to judge, not the parser.
    pub fn parse_integer(&mut self) -> Result<i64> {
        let start = self.pos;
        let Some(number) = self.take_number() else {
            return Err(self.expected(&["an integer"]));
        };
        number.replace('_', "").parse::<i64>().map_err(|error| {
            self.pos = start;
            match error.kind() {
                IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                    self.expected(&["an integer that fits in 64 bits"])
                }
                _ => self.expected(&["an integer"]),
            }
        })
    }

    /// Consumes `[-] number` and returns it as written, or consumes nothing.
    fn take_number(&mut self) -> Option<String> {
        if !self.peek_number() {
            return None;
        }
        let sign = if self.peek_token() == Some(&Token::Minus) {
            self.advance(1);
            "-"
        } else {
            ""
        };
        let Some(Token::Number(digits, _)) = self.peek_token() else {
            return None;
        };
        self.advance(1);
        Some(format!("{sign}{digits}"))
    }

    /// A tenant, user, plan or policy name: folded to lower case unless double-quoted, as
    /// PostgreSQL folds identifiers (ASCII letters only).
    pub fn parse_name(&mut self) -> Result<String> {
        let name = match self.peek_token() {
            Some(Token::Word(Word {
                value,
                quote_style: None,
                ..
            })) => value.to_ascii_lowercase(),
            Some(Token::Word(Word {
                value,
                quote_style: Some('"'),
                ..
            })) if !value.is_empty() => value.clone(),
            Some(Token::Word(Word {
                quote_style: Some(_),
                ..
            })) => return Err(self.error_here("a quoted name cannot be empty")),
            _ => return Err(self.expected(&["a name"])),
        };
        self.advance(1);
        Ok(name)
    }

    /// `name[, name...]`
    pub fn parse_name_list(&mut self) -> Result<Vec<String>> {
        let mut names = vec![self.parse_name()?];
        while self.eat_comma() {
            names.push(self.parse_name()?);
        }
        Ok(names)
    }

    /// The list of `TENANT [=] tl`, after `TENANT`.
    pub fn parse_tenant_list(&mut self) -> Result<Vec<String>> {
        self.eat_eq();
        self.parse_name_list()
    }

    /// An optional `TENANT [=] tl` clause.
    pub fn parse_tenants_clause(&mut self) -> Result<Option<Vec<String>>> {
        if self.eat_keyword("TENANT") {
            self.parse_tenant_list().map(Some)
        } else {
            Ok(None)
        }
    }

    /// An optional `TENANT [=] t` clause naming a single tenant.
    pub fn parse_tenant_clause(&mut self) -> Result<Option<String>> {
        if self.eat_keyword("TENANT") {
            self.eat_eq();
            self.parse_name().map(Some)
        } else {
            Ok(None)
        }
    }

    /// An optional `TENANT [=] {all | tl}` clause; a tenant called "all" is written quoted.
    pub fn parse_tenant_scope_clause(&mut self) -> Result<Option<TenantScope>> {
        if !self.eat_keyword("TENANT") {
            return Ok(None);
        }
        self.eat_eq();
        if self.eat_keyword("ALL") {
            return Ok(Some(TenantScope::All));
        }
        self.parse_name_list()
            .map(|names| Some(TenantScope::List(names)))
    }

    /// An optional `KEYWORD [=] 'string'` clause.
    pub fn parse_string_clause(&mut self, keyword: &'static str) -> Result<Option<String>> {
        if self.eat_keyword(keyword) {
            self.eat_eq();
            self.parse_string().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Optional clauses that may come in any order, each at most once: calls `clause` with the
    /// keyword just consumed, until none of `keywords` comes next.
    pub fn parse_clauses(
        &mut self,
        keywords: &[&'static str],
        mut clause: impl FnMut(&mut Self, &'static str) -> Result<()>,
    ) -> Result<()> {
        let mut seen: Vec<&'static str> = Vec::new();
        loop {
            let next = self.keyword_at(0);
            let Some(&keyword) = keywords.iter().find(|k| next.as_deref() == Some(**k)) else {
                for &keyword in keywords.iter().filter(|k| !seen.contains(*k)) {
                    self.note_at(0, keyword);
                }
                return Ok(());
            };
            if seen.contains(&keyword) {
                return Err(self.error_here(&format!("{keyword} is given twice")));
            }
            seen.push(keyword);
            self.advance(1);
            clause(self, keyword)?;
        }
    }

    pub fn eat_comma(&mut self) -> bool {
        let found = self.peek_token() == Some(&Token::Comma);
        if found {
            self.advance(1);
        }
        found
    }

    pub fn expect_end(&mut self) -> Result<()> {
        if self.pos >= self.lexemes.len() {
            Ok(())
        } else {
            Err(self.expected(&["end of statement"]))
        }
    }

    /// `syntax error at or near "X": expected A, B or C after Y`, listing the keywords already
    /// tried at this token and then `also`.
    pub fn expected(&mut self, also: &[&'static str]) -> ParseError {
        if self.tried_at != self.pos {
            self.tried.clear();
            self.tried_at = self.pos;
        }
        for &what in also {
            self.note_at(0, what);
        }
        let mut message = format!("expected {}", or_list(&self.tried));
        // The word before says where the statement went wrong; a long string there would only
        // bury the message, so it is left out.
        let previous = self.pos.checked_sub(1).map(|i| self.lexemes[i].text);
        if let Some(previous) = previous.filter(|text| text.chars().count() <= 40) {
            message.push_str(&format!(" after {previous}"));
        }
        self.error_here(&message)
    }

    /// A syntax error at the next token (or at the statement's end).
    pub fn error_here(&self, message: &str) -> ParseError {
        let near = match self.lexemes.get(self.pos) {
            Some(lexeme) => Some(lexeme.text),
            None => self.end.text,
        };
        self.error_at(self.position(), near, message)
    }

    /// A syntax error about the token at `position`, written as `near`.
    pub fn error_at(&self, position: usize, near: Option<&str>, message: &str) -> ParseError {
        let at = match near {
            Some(text) => format!("at or near \"{text}\""),
            None => "at end of input".to_string(),
        };
        ParseError {
            message: format!("syntax error {at}: {message}"),
            position,
        }
    }

    /// The next token as written, for errors about a value judged after reading it.
    pub fn text_here(&self) -> Option<&'a str> {
        self.lexemes.get(self.pos).map(|lexeme| lexeme.text)
    }
}

/// `A`, `A or B`, `A, B or C`.
fn or_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
