//! Humane durations (`250ms`, `30s`, `5m`, `1h30m`) and sizes (`32MiB`, `10MB`).
//!
//! The config file is written by people; `grace_period: 30s` reads better than
//! a number of milliseconds. Every value carries its unit, so that nobody has to
//! guess whether `60` is seconds or milliseconds, or `32M` is 32 000 000 or
//! 33 554 432 bytes: a bare number (other than `0` for a duration) is refused
//! with a message that shows the accepted forms (issue 7, defect 15).

use std::time::Duration;

/// The accepted duration forms, for messages.
const DURATION_FORMS: &str =
    "a whole number with a unit, ms, s, m or h (e.g. `250ms`, `30s`, `5m`, `1h`), units combined from largest to smallest (`1m30s`), no spaces; `0` alone is zero";

/// The accepted size forms, for messages.
const SIZE_FORMS: &str =
    "a whole number with a unit: B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000), e.g. `32MiB`; no spaces";

/// Parses a duration: one or more `<integer><unit>` parts with the units `h`,
/// `m`, `s`, `ms`, each at most once and largest first (`1h30m`, `1m30s`,
/// `2s500ms`), or `0` alone. No spaces, no fractions, no other units.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err(format!("empty duration: write {DURATION_FORMS}"));
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.contains(char::is_whitespace) {
        return Err(format!("invalid duration `{text}`: write {DURATION_FORMS}"));
    }
    if text.contains('.') {
        return Err(format!(
            "invalid duration `{text}`: no fractions (`1500ms`, not `1.5s`); write {DURATION_FORMS}"
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid duration `{text}`: `{text}` needs a unit (`{text}s`, `{text}ms`, ...); write {DURATION_FORMS}"
        ));
    }
    // Milliseconds per unit, largest first: the order combined values must follow.
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut total_ms: u64 = 0;
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let (number, after) = leading_integer(rest)
            .ok_or_else(|| format!("invalid duration `{text}`: write {DURATION_FORMS}"))?;
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!(
                "invalid duration `{text}`: `{number}` needs a unit; write {DURATION_FORMS}"
            ));
        }
        let Some(position) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!(
                "invalid duration `{text}`: unknown unit `{unit}`; write {DURATION_FORMS}"
            ));
        };
        if position < next_unit {
            return Err(format!(
                "invalid duration `{text}`: `{unit}` repeated or out of order; write {DURATION_FORMS}"
            ));
        }
        next_unit = position + 1;
        total_ms = number
            .checked_mul(UNITS[position].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
        rest = next;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a size in bytes: `<integer><unit>` with the unit `B`, `KiB`, `MiB`,
/// `GiB` (powers of 1024) or `KB`, `MB`, `GB` (powers of 1000), written exactly
/// so (`mb` could be megabits). No spaces, no fractions, no bare numbers.
pub fn parse_size(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err(format!("empty size: write {SIZE_FORMS}"));
    }
    if text.contains(char::is_whitespace) {
        return Err(format!("invalid size `{text}`: write {SIZE_FORMS}"));
    }
    if text.contains('.') {
        return Err(format!(
            "invalid size `{text}`: no fractions (`1536KiB`, not `1.5MiB`); write {SIZE_FORMS}"
        ));
    }
    let (number, unit) = leading_integer(text)
        .ok_or_else(|| format!("invalid size `{text}`: write {SIZE_FORMS}"))?;
    let multiplier: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "" => {
            return Err(format!(
                "invalid size `{text}`: `{number}` needs a unit (`{number}B` for bytes); write {SIZE_FORMS}"
            ))
        }
        "K" | "M" | "G" | "k" | "m" | "g" => {
            return Err(format!(
                "ambiguous size `{text}`: write `{number}{u}iB` (powers of 1024) or `{number}{u}B` (powers of 1000)",
                u = unit.to_ascii_uppercase()
            ))
        }
        other => {
            return Err(format!(
                "invalid size `{text}`: unknown unit `{other}` (units are case-sensitive); write {SIZE_FORMS}"
            ))
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size `{text}` is too large"))
}

/// Splits `s` into its leading decimal integer and the rest; `None` when it
/// does not start with a digit. A number too big for `u64` saturates, so that
/// the caller's overflow check reports it as too large.
fn leading_integer(s: &str) -> Option<(u64, &str)> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits == 0 {
        return None;
    }
    let (number, rest) = s.split_at(digits);
    Some((number.parse().unwrap_or(u64::MAX), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2s500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why_and_show_the_forms() {
        let err = |s: &str| parse_duration(s).unwrap_err();
        for bad in [
            "", "60", "2 s", " 10s", "10x", "1h30", "s", "-5s", "1.5s", "30s1m", "1s1s", "2d",
            "10S",
        ] {
            assert!(err(bad).contains("`250ms`"), "{bad:?}: {}", err(bad));
        }
        assert!(err("").contains("empty"));
        assert!(err("60").contains("`60` needs a unit (`60s`, `60ms`, ...)"));
        assert!(err("2 s").contains("no spaces"));
        assert!(err("1.5s").contains("no fractions"));
        assert!(err("10x").contains("unknown unit `x`"));
        assert!(err("1h30").contains("`30` needs a unit"));
        assert!(err("30s1m").contains("out of order"));
        assert!(err("99999999999999999999h").contains("too large"));
        assert!(err("9999999999999999h").contains("too large"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("32MiB"), Ok(32 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn bad_sizes_say_why() {
        let err = |s: &str| parse_size(s).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("32M").contains("ambiguous size `32M`: write `32MiB`"));
        assert!(err("32m").contains("`32MiB`"));
        assert!(err("512").contains("`512B` for bytes"));
        assert!(err("10 KB").contains("no spaces"));
        assert!(err("2mib").contains("unknown unit `mib` (units are case-sensitive)"));
        assert!(err("1TiB").contains("unknown unit `TiB`"));
        assert!(err("3parsecs").contains("KiB"));
        assert!(err("MiB").contains("KiB"));
        assert!(err("1.5MiB").contains("no fractions"));
        assert!(err("99999999999GiB").contains("too large"));
    }
}
