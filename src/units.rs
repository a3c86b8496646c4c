//! Sizes as users type them (`1.5G`, `4KiB`, `10MB`) and as zc prints them.

use std::time::Duration;

/// Parses `1234`, `1.5G`, `4KiB`, `10MB`: K M G T and KiB..TiB are powers of
/// 1024, KB..TB powers of 1000.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let multiplier: u64 = match suffix.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => return Err(format!("unknown size suffix '{other}' in '{text}'")),
    };
    if number.is_empty() {
        return Err(format!("'{text}' is not a size"));
    }
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(multiplier)
            .ok_or_else(|| format!("size '{text}' is too large"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a size"))?;
    let bytes = (value * multiplier as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size '{text}' is too large"));
    }
    Ok(bytes as u64)
}

/// A `--limit-rate`: a size a second, with the suffixes of [`parse_size`];
/// zero would never finish, so it is refused.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err(
            "a rate of zero would never finish: give bytes a second, such as 500K or 10M".into(),
        ),
        rate => Ok(rate),
    }
}

/// `4.0 GiB`, `512 B`, `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1.29 GiB/s`, from bytes moved over a duration.
pub fn human_rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    let per_sec = (bytes as f64 / secs) as u64;
    let text = human_bytes(per_sec);
    match text.strip_suffix(" B") {
        Some(b) => format!("{b} B/s"),
        None => format!("{text}/s"),
    }
}

/// Seconds with a precision that suits their size: `0.042 s`, `3.1 s`, `95 s`.
pub fn human_seconds(elapsed: Duration) -> String {
    let s = elapsed.as_secs_f64();
    if s < 1.0 {
        format!("{s:.3} s")
    } else if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4095"), Ok(4095));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1TB"), Ok(1_000_000_000_000));
        assert!(parse_size("").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert!(parse_size("1e30").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("1.5G"), Ok(3 << 29));
        assert_eq!(parse_rate("1"), Ok(1));
        assert!(parse_rate("0").unwrap_err().contains("never finish"));
        assert!(parse_rate("0K").is_err());
        assert!(parse_rate("abc").is_err());
        assert!(parse_rate("").is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(4 << 30), "4.0 GiB");
        assert_eq!(human_bytes(1536 << 10), "1.5 MiB");
        assert_eq!(human_rate(3 << 30, Duration::from_secs(2)), "1.5 GiB/s");
        assert_eq!(human_rate(10, Duration::from_secs(1)), "10 B/s");
    }
}
