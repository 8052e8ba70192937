//! Humane durations (`250ms`, `30s`, `5m`, `1h30m`) and sizes (`32MiB`, `10MB`).
//!
//! The config file is written by people; `grace_period: 30s` reads better than
//! a number of milliseconds, and a bare number is taken in the unit most
//! people mean (seconds for durations, bytes for sizes).

use std::time::Duration;

/// Parses a duration: one or more `<integer><unit>` parts (`ms`, `s`, `m`, `h`,
/// `d`), e.g. `250ms`, `30s`, `1h30m`; a bare integer is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration: write e.g. `30s`, `250ms` or `5m`".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("duration `{text}` is too large"));
    }
    let mut total_ms: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (number, after) = leading_integer(rest).ok_or_else(|| {
            format!("invalid duration `{text}`: expected a number followed by ms, s, m, h or d (e.g. `30s`, `250ms`)")
        })?;
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let ms_per_unit: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: `{number}` needs a unit (ms, s, m, h or d)"
                ))
            }
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}` (use ms, s, m, h or d)"
                ))
            }
        };
        total_ms = number
            .checked_mul(ms_per_unit)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
        rest = next.trim_start();
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a size in bytes: `512` (bytes), `512B`, `64KiB`, `32MiB`, `1GiB`
/// (powers of 1024) or `10KB`, `10MB`, `1GB` (powers of 1000). Units are
/// case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty size: write e.g. `32MiB`, `64KiB` or a number of bytes".into());
    }
    let (number, unit) = leading_integer(s).ok_or_else(|| {
        format!("invalid size `{text}`: expected a number of bytes or a number with a unit (e.g. `32MiB`, `10MB`)")
    })?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "m" | "g" | "t" => {
            return Err(format!(
                "ambiguous size `{text}`: write `{number}{u}iB` (powers of 1024) or `{number}{u}B` (powers of 1000)",
                u = unit.trim().to_ascii_uppercase()
            ))
        }
        other => {
            return Err(format!(
                "invalid size `{text}`: unknown unit `{other}` (use B, KiB, MiB, GiB, KB, MB or GB)"
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
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 10 s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("10x")
            .unwrap_err()
            .contains("unknown unit `x`"));
        assert!(parse_duration("1h30").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("s")
            .unwrap_err()
            .contains("expected a number"));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_duration("9999999999999999h")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("32MiB"), Ok(32 * 1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("10 kb"), Ok(10_000));
        assert_eq!(parse_size("2mib"), Ok(2 << 20));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert!(parse_size("").unwrap_err().contains("empty"));
        assert!(parse_size("32M").unwrap_err().contains("32MiB"));
        assert!(parse_size("3 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_size("MiB").unwrap_err().contains("expected a number"));
        assert!(parse_size("99999999999TiB")
            .unwrap_err()
            .contains("too large"));
    }
}
