//! [`Timestamp`]: UTC instants written the way the original server wrote them (Python's
//! `datetime.now(timezone.utc).isoformat()`), so rows from both sort and compare as text.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A UTC instant with microsecond precision.
///
/// Displayed as Python's `isoformat()` of an aware UTC datetime:
/// `2026-08-22T11:32:24.123456+00:00`, without the fraction when it is zero. Stored
/// timestamps are compared as text (as the original does), which orders correctly in this
/// format.
///
/// ```
/// use provider_config::Timestamp;
///
/// let t = Timestamp::parse("2026-08-22T11:32:24.5Z").unwrap();
/// assert_eq!(t.to_string(), "2026-08-22T11:32:24.500000+00:00");
/// assert_eq!(Timestamp::parse("2026-08-22").unwrap().to_string(), "2026-08-22T00:00:00+00:00");
/// assert!(Timestamp::parse("yesterday").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros: i64,
}

/// Why a string is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {text:?}: expected ISO-8601 such as 2026-08-22, 2026-08-22T11:32:24 or 2026-08-22T11:32:24.123456+00:00"
)]
pub struct InvalidTimestamp {
    /// The rejected text.
    pub text: String,
}

impl Timestamp {
    /// Now, from the system clock.
    pub fn now() -> Self {
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self { micros }
    }

    /// The instant `micros` microseconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_micros(micros: i64) -> Self {
        Self { micros }
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn unix_micros(self) -> i64 {
        self.micros
    }

    /// This instant minus whole days (saturating).
    pub fn minus_days(self, days: u32) -> Self {
        let delta = i64::from(days) * SECONDS_PER_DAY * MICROS_PER_SECOND;
        Self {
            micros: self.micros.saturating_sub(delta),
        }
    }

    /// Parses `YYYY-MM-DD`, optionally followed by `THH:MM[:SS[.fraction]]` and `Z` or an
    /// offset `±HH:MM` (a space may stand for `T`). Without an offset the time is UTC.
    pub fn parse(text: &str) -> Result<Self, InvalidTimestamp> {
        parse(text.trim()).ok_or_else(|| InvalidTimestamp {
            text: text.chars().take(64).collect(),
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.micros.div_euclid(MICROS_PER_SECOND);
        let fraction = self.micros.rem_euclid(MICROS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let second_of_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            second_of_day / 3600,
            second_of_day / 60 % 60,
            second_of_day % 60
        )?;
        if fraction != 0 {
            write!(f, ".{fraction:06}")?;
        }
        f.write_str("+00:00")
    }
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse(text: &str) -> Option<Timestamp> {
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (digits(year)?, digits(month)?, digits(day)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut micros = days_from_civil(year, month, day) * SECONDS_PER_DAY * MICROS_PER_SECOND;
    let Some(rest) = rest else {
        return Some(Timestamp { micros });
    };
    // The offset: `Z`, or `+HH:MM` / `-HH:MM` after the time.
    let (time, offset_minutes) = if let Some(time) = rest.strip_suffix(['Z', 'z']) {
        (time, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (hours, minutes) = rest[i + 1..].split_once(':')?;
        if hours.len() != 2 || minutes.len() != 2 {
            return None;
        }
        let (hours, minutes) = (digits(hours)?, digits(minutes)?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let sign = if rest.as_bytes()[i] == b'-' { -1 } else { 1 };
        (&rest[..i], sign * (hours * 60 + minutes))
    } else {
        (rest, 0)
    };
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let mut fields = clock.split(':');
    let hour = digits(fields.next().filter(|h| h.len() == 2)?)?;
    let minute = digits(fields.next().filter(|m| m.len() == 2)?)?;
    let second = match fields.next() {
        Some(s) if s.len() == 2 => digits(s)?,
        Some(_) => return None,
        None if fraction.is_some() => return None,
        None => 0,
    };
    if fields.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let fraction_micros = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 => {
            let padded = format!("{f:0<9}");
            digits(&padded)? / 1000
        }
        Some(_) => return None,
    };
    micros +=
        ((hour * 60 + minute - offset_minutes) * 60 + second) * MICROS_PER_SECOND + fraction_micros;
    Some(Timestamp { micros })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms (proleptic Gregorian calendar, days since 1970-01-01).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_python_isoformat() {
        assert_eq!(
            Timestamp::from_unix_micros(0).to_string(),
            "1970-01-01T00:00:00+00:00"
        );
        assert_eq!(
            Timestamp::from_unix_micros(1_787_398_344_000_001).to_string(),
            "2026-08-22T11:32:24.000001+00:00"
        );
        assert_eq!(
            Timestamp::from_unix_micros(951_782_400 * MICROS_PER_SECOND).to_string(),
            "2000-02-29T00:00:00+00:00"
        );
        assert_eq!(
            Timestamp::from_unix_micros(-1).to_string(),
            "1969-12-31T23:59:59.999999+00:00"
        );
    }

    #[test]
    fn parses_what_it_formats_and_common_iso_forms() {
        for micros in [
            0,
            1,
            1_787_398_344_123_456,
            951_782_400_000_000,
            -86_400_000_001,
        ] {
            let t = Timestamp::from_unix_micros(micros);
            assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
        let t = Timestamp::parse("2026-08-22T13:32:24+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-08-22T11:32:24+00:00");
        let t = Timestamp::parse("2026-08-22 11:32").unwrap();
        assert_eq!(t.to_string(), "2026-08-22T11:32:00+00:00");
        let t = Timestamp::parse("2026-08-22T11:32:24.123456789Z").unwrap();
        assert_eq!(t.to_string(), "2026-08-22T11:32:24.123456+00:00");
        for bad in [
            "",
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-01-01T25:00",
            "2026-01-01T10:00:60",
            "2026-01-01T10",
            "2026-01-01T10:00.5",
            "2026-01-01T10:00:00+2:00",
            "2026-01-01T10:00:00.",
            "2026-01-01x",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let b = Timestamp::parse("2026-01-01T00:00:00.000001Z").unwrap();
        assert!(a < b && a.to_string() < b.to_string());
        assert_eq!(
            b.minus_days(1).to_string(),
            "2025-12-31T00:00:00.000001+00:00"
        );
    }
}
