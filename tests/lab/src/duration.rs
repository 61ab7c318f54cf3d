//! Durations as manifests write them: Go `time.ParseDuration` syntax
//! ("3m", "1h30m", "500ms", "1.5s"), which Istio's CRDs accept, plus a bare
//! number of seconds for lab annotations. One parser for the whole lab.

use std::time::Duration;

/// Parse `250ms`, `2s`, `1h30m`, or a bare number of seconds (`3`).
pub fn parse(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if let Ok(secs) = rest.parse::<f64>() {
        return (secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// The protobuf JSON form Envoy requires ("180s", "0.500s").
pub fn proto_json(s: &str) -> Option<String> {
    let d = parse(s)?;
    Some(if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    })
}

/// Whole seconds (Envoy's TCP keepalive fields).
pub fn whole_secs(s: &str) -> Option<u64> {
    parse(s).map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax_and_bare_seconds() {
        assert_eq!(parse("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse("x"), None);
        assert_eq!(parse("5x"), None);
    }

    #[test]
    fn envoy_forms() {
        assert_eq!(proto_json("3m").as_deref(), Some("180s"));
        assert_eq!(proto_json("1h30m").as_deref(), Some("5400s"));
        assert_eq!(proto_json("500ms").as_deref(), Some("0.500s"));
        assert_eq!(proto_json("10s").as_deref(), Some("10s"));
        assert_eq!(proto_json("x"), None);
        assert_eq!(whole_secs("1500ms"), Some(1));
    }
}
