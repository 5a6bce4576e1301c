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

use wardmail::calendar::civil;

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
