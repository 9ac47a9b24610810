//! How every figure reads, whichever rendering shows it (console, Markdown, HTML, the history
//! listings, the values `compare` prints): one function per kind of figure, so a latency, a count
//! or a share is written the same way everywhere.
//!
//! The rules:
//!
//! - **Latency** ([`ms`], [`ms_signed`], [`ms_value`]): milliseconds with four significant digits and never
//!   finer than a microsecond — 3 decimals below 10 ms (`0.120`, `2.491`), 2 below 100 ms
//!   (`50.27`), 1 below 1 s (`376.1`), none from 1 s (`1234`). The histograms keep about 3.3
//!   significant digits (1 µs exact below 2 ms), so this shows all they know and no noise; a
//!   router's added microseconds stay visible (`+0.077`).
//! - **Counts** ([`count`]): whole numbers with thousands separators (`12,345`).
//! - **Percentages** ([`pct`], [`pct_signed`]): two decimals and a `%` (`98.08%`, `-1.50%`).
//! - **Rates** ([`rate`]): requests per second with two decimals (`39.80`); **token rates**
//!   ([`tok_rate`]) whole (`3200`).
//! - **Seconds** ([`secs`]): a duration with one decimal (`10.0`); **CPU seconds**
//!   ([`cpu_secs`]) with three (`0.250`). **Memory** ([`mb`]): MB with one decimal.
//! - **Levels and ticks** ([`short`]): at most three decimals, trailing zeros dropped, `k` / `M`
//!   from 100,000 on (`20`, `12.5`, `250k`).
//! - **Time** ([`utc`]): `2026-11-25 01:02:03 UTC`.
//!
//! A value that is not finite (NaN, ±inf) never reaches a page as such: the figure functions
//! show `—` ([`MISSING`]), [`short`] shows `0`.

use std::fmt::Write as _;

/// What stands where a figure is missing or not a number.
pub const MISSING: &str = "—";

/// `x` with `decimals` decimals, or [`MISSING`] when it is not finite.
pub fn fixed(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        // `-0.00` reads as a sign where there is none.
        let s = format!("{x:.decimals$}");
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_string()
        } else {
            s
        }
    } else {
        MISSING.to_string()
    }
}

/// Decimals of a latency of `us` microseconds (see the module's rules): chosen on the rounded
/// value, so 9,999.6 µs does not read `10.000`.
fn ms_decimals(us: u64) -> usize {
    match us {
        0..10_000 => 3,
        10_000..99_995 => 2,
        99_995..999_950 => 1,
        _ => 0,
    }
}

/// Microseconds as milliseconds: `0.120`, `2.491`, `50.27`, `376.1`, `1234`.
pub fn ms(us: u64) -> String {
    format!("{:.*}", ms_decimals(us), us as f64 / 1000.0)
}

/// Milliseconds already as a float (a median the comparison computed) by the rule of [`ms`];
/// [`MISSING`] when not finite.
pub fn ms_value(ms: f64) -> String {
    if !ms.is_finite() {
        return MISSING.to_string();
    }
    let us = (ms.abs() * 1000.0).round() as u64;
    fixed(ms, ms_decimals(us))
}

/// Signed microseconds (a difference) as signed milliseconds: `+0.077`, `-0.050`, `+1.500`;
/// `0.000` without a sign.
pub fn ms_signed(us: i64) -> String {
    let d = ms_decimals(us.unsigned_abs());
    let v = us as f64 / 1000.0;
    if us == 0 {
        format!("{v:.d$}")
    } else {
        format!("{v:+.d$}")
    }
}

/// A count with thousands separators: `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A percentage (already ×100) with two decimals: `98.08%`.
pub fn pct(p: f64) -> String {
    if p.is_finite() {
        format!("{}%", fixed(p, 2))
    } else {
        MISSING.to_string()
    }
}

/// A change in percent, signed: `+12.00%`, `-1.50%`.
pub fn pct_signed(p: f64) -> String {
    if p.is_finite() {
        format!("{p:+.2}%")
    } else {
        MISSING.to_string()
    }
}

/// `part` as a percentage of `whole` (0 when `whole` is 0), for [`pct`].
pub fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Requests per second: `39.80`.
pub fn rate(r: f64) -> String {
    fixed(r, 2)
}

/// Tokens per second, whole: `3200`.
pub fn tok_rate(r: f64) -> String {
    fixed(r, 0)
}

/// A duration in seconds, one decimal: `10.0`.
pub fn secs(s: f64) -> String {
    fixed(s, 1)
}

/// CPU seconds, three decimals: `0.250`.
pub fn cpu_secs(s: f64) -> String {
    fixed(s, 3)
}

/// Megabytes, one decimal: `14.5`.
pub fn mb(m: f64) -> String {
    fixed(m, 1)
}

/// A level, percentile or chart value: at most three decimals without trailing zeros, `k` / `M`
/// from 100,000 on, `0` when not finite: `20`, `12.5`, `0.3`, `250k`.
pub fn short(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let a = v.abs();
    let (x, suffix) = if a >= 1e7 {
        (v / 1e6, "M")
    } else if a >= 1e5 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let decimals = if x.abs() >= 100.0 {
        1
    } else if x.abs() >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{x:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    let s = if s == "-0" { "0" } else { s };
    format!("{s}{suffix}")
}

/// Civil UTC date and time of a Unix time: (year, month, day, hour, minute, second).
///
/// Howard Hinnant's days-to-civil algorithm: days counted in 400-year eras of 146,097 days, with
/// years starting on 1 March so the leap day comes last.
pub fn utc_parts(unix_s: u64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, rem) = (unix_s / 86_400, unix_s % 86_400);
    // 719,468 days from 0000-03-01 to 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Month counted from March: 0 = March … 11 = February.
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let r = rem as u32;
    (year, month, day, r / 3600, r % 3600 / 60, r % 60)
}

/// A Unix time as `2026-11-25 01:02:03 UTC`.
pub fn utc(unix_s: u64) -> String {
    let (y, m, d, hh, mm, ss) = utc_parts(unix_s);
    let mut out = String::with_capacity(23);
    let _ = write!(out, "{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC");
    out
}

/// A recorded start time: [`utc`], or `unknown` for 0 (not recorded).
pub fn started(unix_s: u64) -> String {
    if unix_s == 0 {
        "unknown".to_string()
    } else {
        utc(unix_s)
    }
}

/// A signed Unix time from the history store (negative ones read as 0).
pub fn utc_signed(unix_s: i64) -> String {
    utc(u64::try_from(unix_s).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_keep_four_significant_digits() {
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(1), "0.001");
        assert_eq!(ms(120), "0.120");
        assert_eq!(ms(2_491), "2.491");
        assert_eq!(ms(9_999), "9.999");
        assert_eq!(ms(10_000), "10.00");
        assert_eq!(ms(19_807), "19.81");
        assert_eq!(ms(99_994), "99.99");
        assert_eq!(ms(99_995), "100.0");
        assert_eq!(ms(376_063), "376.1");
        assert_eq!(ms(999_950), "1000");
        assert_eq!(ms(3_600_000_000), "3600000");
        assert_eq!(ms(u64::MAX), format!("{:.0}", u64::MAX as f64 / 1000.0));
        assert_eq!(ms_value(2.4912), "2.491");
        assert_eq!(ms_value(50.271), "50.27");
        assert_eq!(ms_value(-0.0004), "0.000");
        assert_eq!(ms_value(f64::NAN), MISSING);
        assert_eq!(ms_signed(77), "+0.077");
        assert_eq!(ms_signed(-50), "-0.050");
        assert_eq!(ms_signed(0), "0.000");
        assert_eq!(ms_signed(1_500), "+1.500");
        assert_eq!(ms_signed(-25_000), "-25.00");
        assert_eq!(ms_signed(i64::MIN).chars().next(), Some('-'));
    }

    #[test]
    fn counts_shares_and_rates() {
        assert_eq!(count(0), "0");
        assert_eq!(count(12), "12");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(pct(98.076_923), "98.08%");
        assert_eq!(pct(0.0), "0.00%");
        assert_eq!(pct(-0.001), "0.00%");
        assert_eq!(pct(f64::NAN), MISSING);
        assert_eq!(pct_signed(-1.5), "-1.50%");
        assert_eq!(pct_signed(12.0), "+12.00%");
        assert_eq!(pct_signed(f64::INFINITY), MISSING);
        assert_eq!(share(1, 3), 100.0 / 3.0);
        assert_eq!(share(5, 0), 0.0);
        assert_eq!(rate(39.8), "39.80");
        assert_eq!(rate(f64::NEG_INFINITY), MISSING);
        assert_eq!(tok_rate(3_199.6), "3200");
        assert_eq!(tok_rate(1e12), "1000000000000");
        assert_eq!(secs(10.0), "10.0");
        assert_eq!(cpu_secs(0.25), "0.250");
        assert_eq!(mb(14.5), "14.5");
        assert_eq!(fixed(f64::NAN, 3), MISSING);
        assert_eq!(fixed(-0.0001, 2), "0.00");
    }

    #[test]
    fn short_values() {
        assert_eq!(short(0.300_000_000_000_000_04), "0.3");
        assert_eq!(short(20.0), "20");
        assert_eq!(short(12.5), "12.5");
        assert_eq!(short(25_000.0), "25000");
        assert_eq!(short(250_000.0), "250k");
        assert_eq!(short(12_000_000.0), "12M");
        assert_eq!(short(-0.0), "0");
        assert_eq!(short(f64::NAN), "0");
        assert_eq!(short(f64::INFINITY), "0");
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(1_795_568_523), "2026-11-25 01:02:03 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
        assert_eq!(utc_parts(u64::MAX).1, utc_parts(u64::MAX).1.clamp(1, 12));
        assert_eq!(started(0), "unknown");
        assert_eq!(started(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_signed(-5), "1970-01-01 00:00:00 UTC");
    }
}
