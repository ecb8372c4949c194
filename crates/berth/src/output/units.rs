//! Sizes and durations in the words of Docker's go-units.

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// go-units `HumanSizeWithPrecision(size, 3)`: base 1000, three significant
/// digits, Go's `%g` (so 1234567 is "1.23MB" and 999999 is "1e+03kB", as Docker
/// prints it).
pub fn human_size(size: u64) -> String {
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1000.0 && i < DECIMAL_UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g(s, 3), DECIMAL_UNITS[i])
}

/// Go's `%.{prec}g` for non-negative finite values.
fn go_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    // Round to `prec` significant digits in scientific form, then choose the
    // notation by the exponent, as Go's strconv does.
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').expect("scientific notation");
    let exp: i32 = exp.parse().expect("exponent");
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, v))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units `HumanDuration`, which Docker follows with " ago".
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = ((s as f64) / 3600.0).round() as i64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", s / 3600 / 24 / 365)
    }
}

/// Unix seconds of a stored RFC 3339 time; 0 (shown as "N/A", and older
/// than any `until`) when it does not parse.
pub fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).map_or(0, |t| t.timestamp())
}

/// "3 hours ago", or "N/A" for an unknown time, as `docker images` shows it.
pub fn since(unix: i64) -> String {
    if unix <= 0 {
        return "N/A".into();
    }
    let now = chrono::Utc::now().timestamp();
    format!("{} ago", human_duration(now - unix))
}

const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `BytesSize`: base 1024, as `docker info` prints memory.
pub fn human_size_binary(size: u64) -> String {
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1024.0 && i < BINARY_UNITS.len() - 1 {
        s /= 1024.0;
        i += 1;
    }
    format!("{}{}", go_g(s, 4), BINARY_UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_go_units() {
        for (n, want) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (4_261_550, "4.26MB"),
            (1_234_567_890, "1.23GB"),
            (999_999, "1e+03kB"),
            (10_500, "10.5kB"),
            (100_000, "100kB"),
        ] {
            assert_eq!(human_size(n), want, "{n}");
        }
    }

    #[test]
    fn durations_match_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(400 * 86400), "13 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }
}
