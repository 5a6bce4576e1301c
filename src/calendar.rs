//! Calendar dates from Unix seconds, in UTC, without a time-zone database:
//! the proleptic Gregorian calendar that RFC 3339 and e-mail dates use.

/// A calendar date and time of day in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// The year, such as 2026.
    pub year: i64,
    /// The month, 1 to 12.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 59.
    pub second: u32,
}

/// Splits Unix seconds into a date and time of day in UTC.
pub fn civil(unix: i64) -> Civil {
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
        second: (seconds % 60) as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_afternoon_date() {
        let time = civil(1_796_403_600);

        assert_eq!((time.year, time.month, time.day), (2026, 12, 4));
        assert_eq!((time.hour, time.minute, time.second), (17, 0, 0));
    }

    #[test]
    fn civil_known_dates() {
        let epoch = civil(0);
        let leap = civil(951_782_400);
        let before = civil(-1);

        assert_eq!((epoch.year, epoch.month, epoch.day), (1970, 1, 1));
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        assert_eq!((before.year, before.month, before.day), (1969, 12, 31));
        assert_eq!((before.hour, before.minute, before.second), (23, 59, 59));
    }
}
