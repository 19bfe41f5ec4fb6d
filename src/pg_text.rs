//! PostgreSQL text input forms that Arrow's parsers do not accept, rewritten
//! into forms they do: hex `bytea` (`\x0a1b`) and `HH:MM:SS` in intervals.

/// PostgreSQL's hex format for bytea (`\x0a1b`); other text is taken as bytes.
pub fn parse_bytea(text: &str) -> Option<Vec<u8>> {
    let Some(hex) = text.strip_prefix("\\x") else {
        return Some(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

/// Rewrites PostgreSQL interval text (`3 days 04:05:06`, `2 mons`, `-1:30`)
/// into the unit words Arrow parses (`3 days 4 hours 5 minutes 6 seconds`).
pub fn normalize_interval(text: &str) -> String {
    let mut parts = Vec::new();
    for token in text.split_whitespace() {
        if let Some(clock) = clock_time(token) {
            parts.push(clock);
            continue;
        }
        let unit = match token.to_ascii_lowercase().as_str() {
            "mon" | "mons" => "months".to_string(),
            "yr" | "yrs" => "years".to_string(),
            "hr" | "hrs" => "hours".to_string(),
            "min" | "mins" => "minutes".to_string(),
            "sec" | "secs" => "seconds".to_string(),
            _ => token.to_string(),
        };
        parts.push(unit);
    }
    parts.join(" ")
}

/// `[-]H:MM[:SS[.ffffff]]` as `H hours M minutes S seconds`, signs applied to each.
fn clock_time(token: &str) -> Option<String> {
    let (sign, digits) = match token.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", token.strip_prefix('+').unwrap_or(token)),
    };
    let fields: Vec<&str> = digits.split(':').collect();
    if !(2..=3).contains(&fields.len()) {
        return None;
    }
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !fields.iter().all(|f| numeric(f)) || fields[..fields.len() - 1].iter().any(|f| f.contains('.')) {
        return None;
    }
    let mut out = format!("{sign}{} hours {sign}{} minutes", fields[0], fields[1]);
    if let Some(seconds) = fields.get(2) {
        out.push_str(&format!(" {sign}{seconds} seconds"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_in_postgres_form() {
        assert_eq!(normalize_interval("3 days 04:05:06"), "3 days 04 hours 05 minutes 06 seconds");
        assert_eq!(normalize_interval("-1:30"), "-1 hours -30 minutes");
        assert_eq!(normalize_interval("1 year 2 mons"), "1 year 2 months");
        assert_eq!(normalize_interval("2 hours"), "2 hours");
    }

    #[test]
    fn bytea_hex() {
        assert_eq!(parse_bytea("\\x0aff"), Some(vec![10, 255]));
        assert_eq!(parse_bytea("\\x0"), None);
        assert_eq!(parse_bytea("\\xzz"), None);
        assert_eq!(parse_bytea("raw"), Some(b"raw".to_vec()));
    }
}
