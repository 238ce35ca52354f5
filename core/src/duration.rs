//! Durations as operators write them: a whole number and a unit, `90m`,
//! `2h`, `1d` (`--hold`, and schedule windows and leads). Pure; the caller
//! decides the range it accepts, this only turns text into a
//! [`SignedDuration`] or says why it cannot.

use jiff::SignedDuration;

/// Why text is not a duration. Messages quote the text as given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "`{0}` is not a duration; write a whole number and a unit (s, m, min, h, d), e.g. 90m, 2h or 1d"
    )]
    Malformed(String),
    #[error("`{0}` is too long a duration to represent")]
    TooLarge(String),
}

/// Parses `<digits><unit>` with unit `s`, `m` or `min`, `h`, `d` (a day is
/// 24 hours: holds and windows are elapsed time, not calendar days).
/// Surrounding whitespace is ignored; a sign, a fraction, a space before the
/// unit or a missing unit is malformed. Zero is a duration (`0m`): whether
/// it is allowed is the caller's range.
pub fn parse(text: &str) -> Result<SignedDuration, DurationError> {
    let s = text.trim();
    let malformed = || DurationError::Malformed(text.to_string());
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(malformed)?;
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        return Err(malformed());
    }
    let per_unit: i64 = match unit {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(malformed()),
    };
    // Only digits remain, so a failed parse is an overflow of i64.
    let n: i64 = digits
        .parse()
        .map_err(|_| DurationError::TooLarge(text.to_string()))?;
    let secs = n
        .checked_mul(per_unit)
        .ok_or_else(|| DurationError::TooLarge(text.to_string()))?;
    Ok(SignedDuration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_unit_is_read() {
        let cases = [
            ("45s", 45),
            ("90m", 5400),
            ("15min", 900),
            ("2h", 7200),
            ("3h", 10_800),
            ("1d", 86_400),
            ("7d", 604_800),
            ("0m", 0),
            (" 2h\n", 7200),
        ];
        for (text, secs) in cases {
            assert_eq!(parse(text), Ok(SignedDuration::from_secs(secs)), "{text}");
        }
    }

    #[test]
    fn malformed_text_is_an_error_that_quotes_it() {
        for bad in [
            "", " ", "2", "h", "2x", "-1h", "+1h", "1.5h", "2 h", "2hours", "1h30m", "٣h", "2H",
        ] {
            match parse(bad) {
                Err(DurationError::Malformed(t)) => assert_eq!(t, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let e = parse("2x").unwrap_err().to_string();
        assert!(e.contains("`2x`") && e.contains("90m, 2h or 1d"), "{e}");
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let max = u64::MAX.to_string();
        let i64_max = i64::MAX.to_string();
        for big in [
            format!("{max}d"),
            format!("{max}s"),
            format!("{i64_max}m"),
            format!("{}h", "9".repeat(400)),
            "106751991167301d".to_string(), // just past i64::MAX seconds
        ] {
            assert!(
                matches!(parse(&big), Err(DurationError::TooLarge(_))),
                "{big}"
            );
        }
        // The largest whole-day count that fits still parses.
        assert_eq!(
            parse("106751991167300d").unwrap(),
            SignedDuration::from_secs(106_751_991_167_300 * 86_400)
        );
        assert_eq!(
            parse(&format!("{i64_max}s")).unwrap(),
            SignedDuration::from_secs(i64::MAX)
        );
    }
}
