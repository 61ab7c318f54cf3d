//! Durations as kubectl reads them, with checked arithmetic.
//!
//! kubectl's `--request-timeout` goes through client-go
//! `tools/clientcmd/helpers.go` `ParseTimeout`: a bare non-negative integer
//! is a number of seconds, anything else must be Go's `time.ParseDuration`
//! syntax (`src/time/format.go`): a sequence of decimal numbers, each with
//! an optional fraction and a unit, `ns`, `us` (`µs`, `μs`), `ms`, `s`, `m`,
//! `h` — `1m30s`, `500ms`, `1.5h`, `2h45m`; `0` needs no unit. Go rejects a
//! value over about 292 years as "invalid duration"; client-go multiplies a
//! bare integer without checking. Here every step is checked, so no value
//! can panic or wrap: too large is an error naming the limit. Negative
//! values (which Go accepts) are refused: a timeout cannot be negative.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("the value is empty; expected e.g. 30s, 1m30s, 500ms, or a bare number of seconds")]
    Empty,
    #[error("negative durations are not accepted")]
    Negative,
    #[error("{number:?} has no unit; use ns, us, ms, s, m or h (e.g. 1m30s), or a bare whole number of seconds")]
    MissingUnit { number: String },
    #[error("unknown unit {unit:?}; use ns, us, ms, s, m or h (e.g. 1m30s, 500ms)")]
    UnknownUnit { unit: String },
    #[error("expected a number before {rest:?} (e.g. 1m30s, 500ms, 5)")]
    Malformed { rest: String },
    #[error("too large: durations go up to {max}")]
    TooLarge { max: String },
}

/// Go's largest duration: `math.MaxInt64` nanoseconds (about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a kubectl/Go duration. `0`, `0s` and the like give [`Duration::ZERO`].
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    // client-go: a bare non-negative integer is seconds.
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u128 = s.parse().map_err(|_| too_large())?;
        return nanos_to_duration(secs.checked_mul(1_000_000_000).ok_or_else(too_large)?);
    }
    let rest = match s.as_bytes()[0] {
        b'-' => return Err(DurationError::Negative),
        b'+' => &s[1..],
        _ => s,
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(DurationError::Malformed {
            rest: s.to_string(),
        });
    }
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let (nanos, tail) = component(rest)?;
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        if total > MAX_NANOS {
            return Err(too_large());
        }
        rest = tail;
    }
    nanos_to_duration(total)
}

fn too_large() -> DurationError {
    DurationError::TooLarge {
        max: "about 292 years (Go's limit)".to_string(),
    }
}

fn nanos_to_duration(nanos: u128) -> Result<Duration, DurationError> {
    if nanos > MAX_NANOS {
        return Err(too_large());
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_large())?;
    // The remainder is below 10^9, so it fits a u32.
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, sub))
}

/// One `<number>[.<fraction>]<unit>` at the start of `s`: its length in
/// nanoseconds and the rest of the string.
fn component(s: &str) -> Result<(u128, &str), DurationError> {
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, after) = s.split_at(int_end);
    let (frac, after) = match after.strip_prefix('.') {
        Some(a) => {
            let end = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            a.split_at(end)
        }
        None => ("", after),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(DurationError::Malformed {
            rest: s.to_string(),
        });
    }
    let unit_end = after
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(after.len());
    let (unit, tail) = after.split_at(unit_end);
    let scale: u128 = match unit {
        "" => {
            return Err(DurationError::MissingUnit {
                number: s[..s.len() - after.len()].to_string(),
            })
        }
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.to_string(),
            })
        }
    };
    // More digits than u128 holds can only be too large.
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_large())?
    };
    let mut nanos = int.checked_mul(scale).ok_or_else(too_large)?;
    if !frac.is_empty() {
        // Like Go, digits past what can matter are dropped (here: after 18).
        let digits = &frac[..frac.len().min(18)];
        let f: u128 = digits.parse().map_err(|_| too_large())?;
        let div = 10u128.pow(u32::try_from(digits.len()).unwrap_or(18));
        nanos = nanos.checked_add(f * scale / div).ok_or_else(too_large)?;
    }
    if nanos > MAX_NANOS {
        return Err(too_large());
    }
    Ok((nanos, tail))
}

/// `1m30s`, `500ms`, `2h`, `0s`: a short form for messages.
pub fn display(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return if d.is_zero() {
            "0s".to_string()
        } else {
            format!("{}µs", d.as_micros())
        };
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{}s", d.as_secs_f64())
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Duration {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn kubectl_and_go_forms() {
        assert_eq!(ok("5"), Duration::from_secs(5));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("2h45m"), Duration::from_secs(2 * 3600 + 45 * 60));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1.s"), Duration::from_secs(1));
        assert_eq!(ok("+3s"), Duration::from_secs(3));
        assert_eq!(ok("250us"), Duration::from_micros(250));
        assert_eq!(ok("250µs"), Duration::from_micros(250));
        assert_eq!(ok("250μs"), Duration::from_micros(250));
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok(" 10s "), Duration::from_secs(10));
    }

    #[test]
    fn refusals_never_panic() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("-1s"), Err(DurationError::Negative));
        assert_eq!(parse("-1"), Err(DurationError::Negative));
        assert!(matches!(parse("5x"), Err(DurationError::UnknownUnit { unit }) if unit == "x"));
        assert!(matches!(
            parse("1.5"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse("1m30"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(matches!(parse("s"), Err(DurationError::Malformed { .. })));
        assert!(matches!(parse("."), Err(DurationError::Malformed { .. })));
        assert!(matches!(parse("+"), Err(DurationError::Malformed { .. })));
        for huge in [
            "99999999999999999999999",
            "18000000000000000000",
            "18000000000000000000s",
            "9223372037s",
            "2562048h",
            "99999999999999999999999999999999999999999999h",
            "100000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(
                matches!(parse(huge), Err(DurationError::TooLarge { .. })),
                "{huge}"
            );
        }
        // Just under Go's limit is accepted.
        assert!(parse("2562047h").is_ok());
    }

    #[test]
    fn short_display() {
        assert_eq!(display(Duration::from_secs(90)), "1m30s");
        assert_eq!(display(Duration::from_secs(10)), "10s");
        assert_eq!(display(Duration::from_millis(500)), "500ms");
        assert_eq!(display(Duration::from_millis(1500)), "1.5s");
        assert_eq!(display(Duration::from_secs(3600)), "1h");
        assert_eq!(display(Duration::ZERO), "0s");
    }
}
