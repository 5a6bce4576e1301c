//! Dates, sizes and counts as the window shows them.
//!
//! NOTE: dates are shown in UTC, because the crate has no time-zone
//! database (no chrono, time or jiff dependency). The message header and
//! the status bar add "UTC", but the message list has no room for it.
//! Clinic staff see "14:05 UTC" where they expect local time. Adding `jiff`
//! and converting with `Zoned` here would lift it.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date and time of day in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

/// Splits unix seconds into a proleptic Gregorian date and time (UTC).
fn civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);

    // Days since 0000-03-01, so that the leap day is the last day of a
    // "year" and each 400-year era has the same length (146,097 days).
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);

    Civil {
        year,
        month,
        day,
        hour: (seconds / 3_600) as u32,
        minute: (seconds % 3_600 / 60) as u32,
    }
}

fn month_name(month: u32) -> &'static str {
    MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("?")
}

/// Returns the current time as unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Formats a compact date for the message list: the time for today, day and month
/// for this year, otherwise day, month and year.
pub fn list_date(unix: Option<i64>, now: i64) -> String {
    let Some(unix) = unix else {
        return String::new();
    };
    let (date, today) = (civil(unix), civil(now));
    if (date.year, date.month, date.day) == (today.year, today.month, today.day) {
        format!("{:02}:{:02}", date.hour, date.minute)
    } else if date.year == today.year {
        format!("{} {}", date.day, month_name(date.month))
    } else {
        format!("{} {} {}", date.day, month_name(date.month), date.year)
    }
}

/// Formats a full date for the message header.
pub fn full_date(unix: Option<i64>) -> String {
    let Some(unix) = unix else {
        return "unknown".to_owned();
    };
    let date = civil(unix);
    format!(
        "{} {} {}, {:02}:{:02} UTC",
        date.day,
        month_name(date.month),
        date.year,
        date.hour,
        date.minute
    )
}

/// Groups a hex fingerprint in blocks of four for reading aloud.
pub fn fingerprint(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Formats a calendar day, "3 Dec 2029", for key expiry.
pub fn day(unix: i64) -> String {
    let date = civil(unix);
    format!("{} {} {}", date.day, month_name(date.month), date.year)
}

/// Formats the time of day, for "synced at" notes.
pub fn time_of_day(unix: i64) -> String {
    let date = civil(unix);
    format!("{:02}:{:02} UTC", date.hour, date.minute)
}

/// Formats a byte count in B, KB or MB (powers of 1024, one decimal).
pub fn size(bytes: usize) -> String {
    const KB: f64 = 1024.0;
    let value = bytes as f64;
    if value < KB {
        format!("{bytes} B")
    } else if value < KB * KB {
        format!("{:.1} KB", value / KB)
    } else {
        format!("{:.1} MB", value / (KB * KB))
    }
}

/// Formats a count with thousands separators ("12,345").
pub fn count(value: usize) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Shortens `value` to at most `max` characters, ending with an ellipsis.
/// Rows and headers are clipped by their containers anyway, so this only
/// keeps text shaping cheap for very long subjects.
pub fn clip(value: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &value[..end]).into(),
        None => value.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_known_dates() {
        assert_eq!(
            civil(0),
            Civil {
                year: 1970,
                month: 1,
                day: 1,
                hour: 0,
                minute: 0
            }
        );
        // 2000-02-29 12:34 UTC, a leap day in a century year.
        assert_eq!(
            civil(951_827_640),
            Civil {
                year: 2000,
                month: 2,
                day: 29,
                hour: 12,
                minute: 34
            }
        );
        // 2026-12-04 17:00 UTC.
        assert_eq!(
            civil(1_796_403_600),
            Civil {
                year: 2026,
                month: 12,
                day: 4,
                hour: 17,
                minute: 0
            }
        );
        // 1969-12-31 23:59 UTC, before the epoch.
        assert_eq!(
            civil(-60),
            Civil {
                year: 1969,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59
            }
        );
    }

    #[test]
    fn list_date_by_age() {
        let now = 1_796_403_600;
        assert_eq!(list_date(Some(now - 3_600), now), "16:00");
        assert_eq!(list_date(Some(now - 30 * 86_400), now), "4 Nov");
        assert_eq!(list_date(Some(now - 400 * 86_400), now), "30 Oct 2025");
        assert_eq!(list_date(None, now), "");
    }

    #[test]
    fn count_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(100_000), "100,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn clip_long_text() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééééé", 3), "ééé…");
    }

    #[test]
    fn size_units() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2_048), "2.0 KB");
        assert_eq!(size(3 * 1024 * 1024), "3.0 MB");
    }
}
