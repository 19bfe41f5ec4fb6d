//! `COPY (SUBSCRIBE x [WITH (snapshot = true|false)] [VERSION AS OF n]) TO STDOUT`,
//! recognised at the token level (the SQL grammar has no SUBSCRIBE).

use datafusion::sql::sqlparser::tokenizer::Token;

use super::parse::{Command, object_name};
use crate::error::{Error, Result};

/// The SUBSCRIBE in `tokens` (one statement), if it is one.
pub fn subscribe_command(tokens: &[Token]) -> Result<Option<Command>> {
    let tokens: Vec<&Token> = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_))).collect();
    let is_word = |token: Option<&&Token>, word: &str| matches!(token, Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
    if !(is_word(tokens.first(), "copy")
        && tokens.get(1) == Some(&&Token::LParen)
        && is_word(tokens.get(2), "subscribe"))
    {
        return Ok(None);
    }
    let syntax = |what: &str| {
        Error::Syntax(format!(
            "{what}; expected COPY (SUBSCRIBE relation [WITH (snapshot = true|false)] [VERSION AS OF offset]) TO STDOUT"
        ))
    };
    let mut at = 3;
    let relation = match tokens.get(at) {
        Some(Token::Word(word)) => object_name(&word.to_string()),
        _ => return Err(syntax("a relation name is missing")),
    };
    at += 1;
    let mut snapshot = true;
    let mut as_of = None;
    loop {
        if is_word(tokens.get(at), "with") {
            if tokens.get(at + 1) != Some(&&Token::LParen) {
                return Err(syntax("WITH needs options in parentheses"));
            }
            at += 2;
            loop {
                if !is_word(tokens.get(at), "snapshot") {
                    return Err(syntax("the only option of SUBSCRIBE is snapshot"));
                }
                at += 1;
                if tokens.get(at) == Some(&&Token::Eq) {
                    at += 1;
                }
                snapshot = match tokens.get(at) {
                    Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("true") => true,
                    Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("false") => false,
                    Some(Token::SingleQuotedString(s)) if s == "true" || s == "on" => true,
                    Some(Token::SingleQuotedString(s)) if s == "false" || s == "off" => false,
                    _ => return Err(syntax("snapshot takes true or false")),
                };
                at += 1;
                match tokens.get(at) {
                    Some(Token::Comma) => at += 1,
                    Some(Token::RParen) => {
                        at += 1;
                        break;
                    }
                    _ => return Err(syntax("unclosed WITH (…)")),
                }
            }
        } else if is_word(tokens.get(at), "version") {
            if !(is_word(tokens.get(at + 1), "as") && is_word(tokens.get(at + 2), "of")) {
                return Err(syntax("VERSION must be followed by AS OF"));
            }
            as_of = match tokens.get(at + 3) {
                Some(Token::Number(n, _)) => {
                    Some(n.parse::<u64>().map_err(|_| syntax("VERSION AS OF takes an offset (a whole number)"))?)
                }
                _ => return Err(syntax("VERSION AS OF takes an offset (a whole number)")),
            };
            at += 4;
        } else {
            break;
        }
    }
    if tokens.get(at) != Some(&&Token::RParen)
        || !is_word(tokens.get(at + 1), "to")
        || !is_word(tokens.get(at + 2), "stdout")
        || tokens.len() != at + 3
    {
        return Err(syntax("unexpected text after the relation"));
    }
    Ok(Some(Command::Subscribe { relation, snapshot, as_of }))
}
