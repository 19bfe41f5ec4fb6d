//! Subscriptions, recognised at the token level (the SQL grammar has no
//! SUBSCRIBE):
//! - `COPY (SUBSCRIBE x [WITH (snapshot = true|false, behind_warning = n)] [VERSION AS OF n]) TO STDOUT`
//! - `DECLARE c CURSOR FOR SUBSCRIBE x …`, then
//!   `FETCH [ALL | n] [FROM | IN] c [WITH (timeout = '…')]` and `CLOSE c | ALL`.

use datafusion::sql::sqlparser::tokenizer::Token;

use super::parse::{Command, object_name};
use crate::error::{Error, Result};

/// What `SUBSCRIBE x …` asks for.
#[derive(Debug, Clone)]
pub struct SubscribeSpec {
    pub relation: String,
    pub snapshot: bool,
    /// Start after this offset instead of now.
    pub as_of: Option<u64>,
    /// Warn the subscriber when more offsets than this wait to be sent.
    pub behind_warning: u64,
}

/// `behind_warning` unless the statement sets it: about ten reads' worth.
pub const BEHIND_WARNING_DEFAULT: u64 = 1_000_000;

/// The subscription statement in `tokens` (one statement), if it is one.
pub fn subscribe_command(tokens: &[Token]) -> Result<Option<Command>> {
    let tokens: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let mut words = Words { tokens: &tokens, at: 0 };
    if words.word("copy") && words.token(&Token::LParen) && words.word("subscribe") {
        let syntax = |what: &str| {
            Error::Syntax(format!(
                "{what}; expected COPY (SUBSCRIBE relation [WITH (snapshot = true|false, behind_warning = n)] [VERSION \
                 AS OF offset]) TO STDOUT"
            ))
        };
        let spec = subscription(&mut words, &syntax)?;
        if !(words.token(&Token::RParen) && words.word("to") && words.word("stdout") && words.done()) {
            return Err(syntax("unexpected text after the relation"));
        }
        return Ok(Some(Command::Subscribe(spec)));
    }
    words.at = 0;
    if words.word("declare") {
        let Some(cursor) = words.name() else { return Ok(None) };
        if !(words.word("cursor") && words.word("for") && words.word("subscribe")) {
            return Ok(None);
        }
        let syntax = |what: &str| {
            Error::Syntax(format!(
                "{what}; expected DECLARE cursor CURSOR FOR SUBSCRIBE relation [WITH (snapshot = true|false, \
                 behind_warning = n)] [VERSION AS OF offset]"
            ))
        };
        let spec = subscription(&mut words, &syntax)?;
        if !words.done() {
            return Err(syntax("unexpected text after the relation"));
        }
        return Ok(Some(Command::DeclareCursor { cursor, spec }));
    }
    words.at = 0;
    if words.word("fetch") {
        return fetch(&mut words).map(Some);
    }
    words.at = 0;
    if words.word("close") {
        let cursor = if words.word("all") { None } else { words.name() };
        if !words.done() {
            return Err(Error::Syntax("expected CLOSE cursor or CLOSE ALL".into()));
        }
        return Ok(Some(Command::CloseCursor { cursor }));
    }
    Ok(None)
}

/// `relation [WITH (snapshot = …)] [VERSION AS OF n]`, after SUBSCRIBE.
fn subscription(words: &mut Words, syntax: &dyn Fn(&str) -> Error) -> Result<SubscribeSpec> {
    let relation = words.name().ok_or_else(|| syntax("a relation name is missing"))?;
    let mut spec = SubscribeSpec { relation, snapshot: true, as_of: None, behind_warning: BEHIND_WARNING_DEFAULT };
    loop {
        if words.word("with") {
            for (option, value) in words.options().ok_or_else(|| syntax("WITH needs options in parentheses"))? {
                match (option.as_str(), value.to_lowercase().as_str()) {
                    ("snapshot", "true" | "on") => spec.snapshot = true,
                    ("snapshot", "false" | "off") => spec.snapshot = false,
                    ("snapshot", _) => return Err(syntax("snapshot takes true or false")),
                    ("behind_warning", count) => {
                        spec.behind_warning = count
                            .parse()
                            .map_err(|_| syntax("behind_warning takes a number of offsets (a whole number)"))?
                    }
                    _ => return Err(syntax("the options of SUBSCRIBE are snapshot and behind_warning")),
                };
            }
        } else if words.word("version") {
            if !(words.word("as") && words.word("of")) {
                return Err(syntax("VERSION must be followed by AS OF"));
            }
            let offset = words.number().ok_or_else(|| syntax("VERSION AS OF takes an offset (a whole number)"))?;
            spec.as_of = Some(offset);
        } else {
            return Ok(spec);
        }
    }
}

/// `FETCH [FORWARD] [ALL | NEXT | n] [FROM | IN] cursor [WITH (timeout = '…')]`.
fn fetch(words: &mut Words) -> Result<Command> {
    let syntax = || Error::Syntax("expected FETCH [ALL | n] [FROM] cursor [WITH (timeout = '1s')]".into());
    words.word("forward");
    let count = if words.word("all") {
        None
    } else if words.word("next") {
        Some(1)
    } else {
        Some(words.number().unwrap_or(1))
    };
    let _ = words.word("from") || words.word("in");
    let cursor = words.name().ok_or_else(syntax)?;
    let mut timeout = None;
    if words.word("with") {
        for (option, value) in words.options().ok_or_else(syntax)? {
            if option != "timeout" {
                return Err(Error::Syntax(format!("unknown FETCH option {option}; it takes timeout")));
            }
            let micros = crate::sql::ddl::interval("timeout", &value)?.micros;
            timeout = Some(std::time::Duration::from_micros(micros as u64));
        }
    }
    if !words.done() {
        return Err(syntax());
    }
    Ok(Command::Fetch { cursor, count, timeout })
}

/// A cursor over a statement's significant tokens.
struct Words<'a> {
    tokens: &'a [&'a Token],
    at: usize,
}

impl Words<'_> {
    /// Consumes unquoted keyword `word` if it is next.
    fn word(&mut self, word: &str) -> bool {
        let found = matches!(self.tokens.get(self.at), Some(Token::Word(w))
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        self.at += usize::from(found);
        found
    }

    fn token(&mut self, token: &Token) -> bool {
        let found = self.tokens.get(self.at) == Some(&token);
        self.at += usize::from(found);
        found
    }

    fn name(&mut self) -> Option<String> {
        match self.tokens.get(self.at) {
            Some(Token::Word(word)) => {
                self.at += 1;
                Some(object_name(&word.to_string()))
            }
            _ => None,
        }
    }

    fn number(&mut self) -> Option<u64> {
        match self.tokens.get(self.at) {
            Some(Token::Number(n, _)) => {
                let value = n.parse().ok()?;
                self.at += 1;
                Some(value)
            }
            _ => None,
        }
    }

    /// `(name = value, …)`; values are words, numbers or quoted strings.
    fn options(&mut self) -> Option<Vec<(String, String)>> {
        if !self.token(&Token::LParen) {
            return None;
        }
        let mut options = Vec::new();
        loop {
            let name = self.name()?.to_lowercase();
            self.token(&Token::Eq);
            let value = match self.tokens.get(self.at)? {
                Token::Word(word) => word.value.clone(),
                Token::Number(n, _) => n.clone(),
                Token::SingleQuotedString(s) => s.clone(),
                _ => return None,
            };
            self.at += 1;
            options.push((name, value));
            if self.token(&Token::RParen) {
                return Some(options);
            }
            if !self.token(&Token::Comma) {
                return None;
            }
        }
    }

    fn done(&self) -> bool {
        self.at == self.tokens.len()
    }
}
