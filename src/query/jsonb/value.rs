//! JSONB values as PostgreSQL keeps them: an object's keys sorted (shorter
//! first, then bytewise) with the last of a duplicated key kept, numbers as
//! NUMERIC (`1e2` is `100`, `1.50` stays `1.50`), and the text printed with
//! a space after each `:` and `,`. Strata stores JSONB in this form, so the
//! text of two equal values is equal, and `->` returns text in this form too.

use jiter::{Jiter, Peek};

/// How deep arrays and objects may nest; deeper input is refused rather
/// than recursed into.
const MAX_DEPTH: usize = 1000;

/// Digits a JSON number may have before and after the point, written out
/// (`1e999` is a thousand characters stored). PostgreSQL's NUMERIC allows
/// more (131,072 and 16,383) but stores them packed; written out, a short
/// input could take hundreds of times its size.
const MAX_WHOLE_DIGITS: i64 = 1_000;
const MAX_FRACTION_DIGITS: i64 = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// As NUMERIC prints it.
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// Keys in PostgreSQL's order, each once.
    Object(Vec<(String, Json)>),
}

/// Why a text is not JSON.
#[derive(Debug)]
pub struct NotJson(pub String);

impl From<NotJson> for crate::error::Error {
    fn from(NotJson(why): NotJson) -> Self {
        crate::error::Error::InvalidTextRepresentation(format!("invalid input syntax for type json: {why}"))
    }
}

impl Json {
    pub fn parse(text: &str) -> Result<Json, NotJson> {
        let mut jiter = Jiter::new(text.as_bytes());
        let peek = jiter.peek().map_err(not_json)?;
        let value = read(&mut jiter, peek, 0)?;
        jiter.finish().map_err(not_json)?;
        Ok(value)
    }

    /// An object of `entries`, in PostgreSQL's key order, the last of a
    /// repeated key kept.
    pub fn object(entries: Vec<(String, Json)>) -> Json {
        Json::Object(sorted_keys(entries))
    }

    /// PostgreSQL's name for the value's type, as `jsonb_typeof` gives it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    pub fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => write_string(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_string(key, out);
                    out.push_str(": ");
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    /// `self @> other`, as PostgreSQL defines it: every key and value of an
    /// object in `other` is in the matching object here, every element of an
    /// array in `other` is matched by some element here, and at the top
    /// level an array contains a scalar that is one of its elements.
    pub fn contains(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Array(items), scalar) if !is_container(scalar) => items.iter().any(|item| item.same_scalar(scalar)),
            _ => self.contains_nested(other),
        }
    }

    fn contains_nested(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Object(mine), Json::Object(theirs)) => theirs.iter().all(|(key, wanted)| {
                mine.binary_search_by(|(k, _)| key_order(k, key)).is_ok_and(|at| mine[at].1.contains_value(wanted))
            }),
            (Json::Array(mine), Json::Array(theirs)) => {
                theirs.iter().all(|wanted| mine.iter().any(|item| item.contains_value(wanted)))
            }
            (a, b) => a.same_scalar(b),
        }
    }

    /// A value inside a container: scalars must be equal, containers of the
    /// same kind must contain.
    fn contains_value(&self, wanted: &Json) -> bool {
        match (self, wanted) {
            (Json::Object(_), Json::Object(_)) | (Json::Array(_), Json::Array(_)) => self.contains_nested(wanted),
            (a, b) => a.same_scalar(b),
        }
    }

    fn same_scalar(&self, other: &Json) -> bool {
        match (self, other) {
            (Json::Number(a), Json::Number(b)) => numeric_value(a) == numeric_value(b),
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::String(a), Json::String(b)) => a == b,
            _ => false,
        }
    }

    /// `self ? key`: a key of an object, or a string element of an array
    /// (or the string itself), as PostgreSQL's `?` is.
    pub fn has_key(&self, key: &str) -> bool {
        match self {
            Json::Object(entries) => entries.binary_search_by(|(k, _)| key_order(k, key)).is_ok(),
            Json::Array(items) => items.iter().any(|item| matches!(item, Json::String(s) if s == key)),
            Json::String(s) => s == key,
            _ => false,
        }
    }

    /// The value of an object's key, as `->` with a text key finds it.
    pub fn field(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.binary_search_by(|(k, _)| key_order(k, key)).ok().map(|at| &entries[at].1),
            _ => None,
        }
    }

    /// Follows a path as `#>` does: each step a key of an object, or an
    /// index (negative from the end) of an array.
    pub fn at_path<'a>(&'a self, path: &[&str]) -> Option<&'a Json> {
        path.iter().try_fold(self, |value, step| match value {
            Json::Object(_) => value.field(step),
            Json::Array(items) => {
                let index: i64 = step.parse().ok()?;
                let index = if index < 0 { items.len() as i64 + index } else { index };
                usize::try_from(index).ok().and_then(|i| items.get(i))
            }
            _ => None,
        })
    }

    /// `self || other`: two objects merged (`other`'s value of a key both
    /// have wins), else both as arrays (a scalar or an object as an array
    /// of itself) concatenated, as PostgreSQL's `jsonb || jsonb` is.
    pub fn concat(self, other: Json) -> Json {
        match (self, other) {
            (Json::Object(mut mine), Json::Object(theirs)) => {
                mine.extend(theirs);
                Json::object(mine)
            }
            (mine, theirs) => {
                let as_items = |value: Json| match value {
                    Json::Array(items) => items,
                    other => vec![other],
                };
                let mut items = as_items(mine);
                items.extend(as_items(theirs));
                Json::Array(items)
            }
        }
    }

    /// `self - key`: an object without the key, an array without its
    /// string elements equal to it; a scalar has nothing to delete.
    pub fn without_keys(self, keys: &[&str]) -> Result<Json, &'static str> {
        match self {
            Json::Object(entries) => {
                Ok(Json::Object(entries.into_iter().filter(|(k, _)| !keys.contains(&k.as_str())).collect()))
            }
            Json::Array(items) => Ok(Json::Array(
                items
                    .into_iter()
                    .filter(|item| !matches!(item, Json::String(s) if keys.contains(&s.as_str())))
                    .collect(),
            )),
            _ => Err("cannot delete from scalar"),
        }
    }

    /// `self - index`: an array without the element at the index
    /// (negative from the end; out of range, the array as it is).
    pub fn without_index(self, index: i64) -> Result<Json, &'static str> {
        match self {
            Json::Array(mut items) => {
                let at = if index < 0 { items.len() as i64 + index } else { index };
                if let Ok(at) = usize::try_from(at)
                    && at < items.len()
                {
                    items.remove(at);
                }
                Ok(Json::Array(items))
            }
            Json::Object(_) => Err("cannot delete from object using integer index"),
            _ => Err("cannot delete from scalar"),
        }
    }

    /// The value as `->>` gives it: a string without its quotes, SQL NULL
    /// for JSON null, any other value as JSON text.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Json::Null => None,
            Json::String(s) => Some(s.clone()),
            other => Some(other.to_text()),
        }
    }
}

fn is_container(value: &Json) -> bool {
    matches!(value, Json::Array(_) | Json::Object(_))
}

/// PostgreSQL's order of object keys: shorter first, then bytewise.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The text as PostgreSQL's JSONB prints it, or why it is not JSON.
pub fn normalize(text: &str) -> Result<String, NotJson> {
    Ok(Json::parse(text)?.to_text())
}

fn not_json(error: jiter::JiterError) -> NotJson {
    NotJson(error.to_string())
}

fn read(jiter: &mut Jiter, peek: Peek, depth: usize) -> Result<Json, NotJson> {
    if depth > MAX_DEPTH {
        return Err(NotJson(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    Ok(match peek {
        Peek::Null => {
            jiter.known_null().map_err(not_json)?;
            Json::Null
        }
        Peek::True | Peek::False => Json::Bool(jiter.known_bool(peek).map_err(not_json)?),
        Peek::String => {
            let s = jiter.known_str().map_err(not_json)?;
            if s.contains('\0') {
                return Err(NotJson("\\u0000 cannot be converted to text".into()));
            }
            Json::String(s.to_owned())
        }
        Peek::Array => {
            let mut items = Vec::new();
            let mut next = jiter.known_array().map_err(not_json)?;
            while let Some(peek) = next {
                items.push(read(jiter, peek, depth + 1)?);
                next = jiter.array_step().map_err(not_json)?;
            }
            Json::Array(items)
        }
        Peek::Object => {
            let mut entries: Vec<(String, Json)> = Vec::new();
            let mut key = jiter.known_object().map_err(not_json)?.map(str::to_owned);
            while let Some(k) = key {
                let peek = jiter.peek().map_err(not_json)?;
                entries.push((k, read(jiter, peek, depth + 1)?));
                key = jiter.next_key().map_err(not_json)?.map(str::to_owned);
            }
            Json::Object(sorted_keys(entries))
        }
        number => Json::Number(numeric_text(jiter.known_number_bytes(number).map_err(not_json)?)?),
    })
}

/// Keys in PostgreSQL's order, the last value of a repeated key kept.
fn sorted_keys(mut entries: Vec<(String, Json)>) -> Vec<(String, Json)> {
    // Stable: a repeated key's values stay in input order, so the last wins.
    entries.sort_by(|(a, _), (b, _)| key_order(a, b));
    let mut kept: Vec<(String, Json)> = Vec::with_capacity(entries.len());
    for entry in entries {
        match kept.last_mut() {
            Some(last) if last.0 == entry.0 => *last = entry,
            _ => kept.push(entry),
        }
    }
    kept
}

/// A JSON number as NUMERIC prints it: the exponent written out, the scale
/// the digits after the point leave (`1.50e1` is `15.0`), no sign on zero.
fn numeric_text(lexeme: &[u8]) -> Result<String, NotJson> {
    let text = std::str::from_utf8(lexeme).map_err(|e| NotJson(e.to_string()))?;
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exponent: i64 = unsigned[at + 1..].parse().map_err(|_| overflow())?;
            (&unsigned[..at], exponent)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{whole}{fraction}");
    // The value is digits × 10^-scale.
    let scale = fraction.len() as i64 - exponent;
    // Leading zeros and a zero's exponent take no room (`0e9999` is 0).
    let significant = digits.trim_start_matches('0').len() as i64;
    let whole_digits = if significant == 0 { 1 } else { significant - scale };
    if scale > MAX_FRACTION_DIGITS || whole_digits > MAX_WHOLE_DIGITS {
        return Err(overflow());
    }
    let mut out = String::new();
    if scale <= 0 {
        out.push_str(digits.trim_start_matches('0'));
        if !out.is_empty() {
            out.extend(std::iter::repeat_n('0', (-scale) as usize));
        }
        if out.is_empty() {
            out.push('0');
        }
    } else {
        let scale = scale as usize;
        let padded =
            if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale + 1 - digits.len())) } else { digits };
        let (int_part, frac_part) = padded.split_at(padded.len() - scale);
        let int_part = int_part.trim_start_matches('0');
        out.push_str(if int_part.is_empty() { "0" } else { int_part });
        out.push('.');
        out.push_str(frac_part);
    }
    let zero = out.bytes().all(|b| b == b'0' || b == b'.');
    if negative && !zero {
        out.insert(0, '-');
    }
    Ok(out)
}

/// A number in exponent form (`1E-7`) written out (`0.0000001`), as NUMERIC
/// input reads it; `None` when it is not a JSON-style number.
pub fn written_out(number: &str) -> Option<String> {
    numeric_text(number.trim().as_bytes()).ok()
}

fn overflow() -> NotJson {
    NotJson("value overflows numeric format".into())
}

/// A NUMERIC's text with trailing fraction zeros dropped, so that equal
/// values compare equal (`1.0` and `1`).
fn numeric_value(text: &str) -> &str {
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { text }
}

/// A JSON string literal as PostgreSQL escapes it.
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        normalize(text).unwrap()
    }

    #[test]
    fn prints_as_postgresql_does() {
        assert_eq!(
            norm(r#"{"b":1, "a":  [1,2,{"x":1.50}], "aa": null}"#),
            r#"{"a": [1, 2, {"x": 1.50}], "b": 1, "aa": null}"#
        );
        assert_eq!(norm(r#"{"a":1,"a":2}"#), r#"{"a": 2}"#);
        assert_eq!(norm(" [ ] "), "[]");
        assert_eq!(norm("{}"), "{}");
        assert_eq!(norm(r#""a\"b\\c\n\u0001é""#), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn numbers_are_numeric() {
        for (input, shown) in [
            ("1e2", "100"),
            ("1.50", "1.50"),
            ("1.50e1", "15.0"),
            ("1.5e-3", "0.0015"),
            ("-0", "0"),
            ("-0.0", "0.0"),
            ("0.001", "0.001"),
            ("-12.5E+1", "-125"),
            ("100e-1", "10.0"),
            ("0e5", "0"),
            ("12345678901234567890123", "12345678901234567890123"),
        ] {
            assert_eq!(norm(input), shown, "{input}");
        }
        assert_eq!(norm("0e200000"), "0");
        assert_eq!(norm("0.05e3"), "50");
        assert_eq!(norm("1e999").len(), 1000);
        assert!(normalize("1e1000").is_err());
        assert!(normalize("1e-1001").is_err());
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in ["", "{", "{'a': 1}", "[1,]", "01", "1 2", "nul", r#""\u0000""#] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn containment_follows_postgresql() {
        let j = |t: &str| Json::parse(t).unwrap();
        assert!(j(r#"{"a": 1, "b": {"c": [1, 2, 3]}}"#).contains(&j(r#"{"b": {"c": [3]}}"#)));
        assert!(!j(r#"{"a": 1}"#).contains(&j(r#"{"a": 2}"#)));
        assert!(j("[1, 2, [3, 4]]").contains(&j("[[4], 1]")));
        assert!(j(r#"["foo", "bar"]"#).contains(&j(r#""foo""#)));
        assert!(!j(r#""foo""#).contains(&j(r#"["foo"]"#)));
        assert!(!j("[[1, 2]]").contains(&j("1")));
        assert!(j(r#"{"n": 1.0}"#).contains(&j(r#"{"n": 1}"#)));
        assert!(!j("[1]").contains(&j("[{}]")));
        assert!(j(r#"{"a": [1]}"#).has_key("a") && j(r#"["a"]"#).has_key("a") && !j(r#"[{"a": 1}]"#).has_key("a"));
    }

    #[test]
    fn paths_take_keys_and_indexes() {
        let j = Json::parse(r#"{"a": [10, {"b": "x"}], "1": true}"#).unwrap();
        assert_eq!(j.at_path(&["a", "1", "b"]), Some(&Json::String("x".into())));
        assert_eq!(j.at_path(&["a", "-2"]), Some(&Json::Number("10".into())));
        assert_eq!(j.at_path(&["1"]), Some(&Json::Bool(true)));
        assert_eq!(j.at_path(&["a", "x"]), None);
        assert_eq!(j.at_path(&[]), Some(&j));
    }
}
