//! UTC calendar dates of NTP timestamps (the proleptic Gregorian calendar; NTP seconds are UTC
//! seconds, with no leap seconds counted): for leap seconds, which come at month ends, and for
//! dates in messages.

use super::NtpTimestamp;

/// Unix seconds that place a timestamp in its era: the era nearest 2026, right until 2094.
const ERA_PIVOT_UNIX: i64 = 1_780_000_000;

/// The UTC (year, month, day) of `time`.
pub fn civil_date(time: NtpTimestamp) -> (i64, u32, u32) {
    let (unix, _) = time.to_unix_near(ERA_PIVOT_UNIX);
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `time`'s UTC date as `YYYY-MM-DD`.
pub fn utc_date(time: NtpTimestamp) -> String {
    let (year, month, day) = civil_date(time);
    format!("{year:04}-{month:02}-{day:02}")
}

/// 00:00:00 UTC on the first day of the month after the one `time` falls in.
pub fn next_month_start(time: NtpTimestamp) -> NtpTimestamp {
    let (year, month, _) = civil_date(time);
    let (year, month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NtpTimestamp::from_unix(days_from_civil(year, month, 1) * 86_400, 0)
}

/// Days from 1970-01-01 to `year`-`month`-`day`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(seconds: i64) -> NtpTimestamp {
        NtpTimestamp::from_unix(seconds, 0)
    }

    #[test]
    fn months_and_dates_follow_the_calendar() {
        // Unix times of midnights, as any calendar library gives them.
        let (dec_31_2025, jan_1_2026, jul_1_2026) = (1_767_139_200, 1_767_225_600, 1_782_864_000);
        let (feb_29_2028, mar_1_2028, feb_29_2024) = (1_835_395_200, 1_835_481_600, 1_709_164_800);
        assert_eq!(next_month_start(unix(dec_31_2025)), unix(jan_1_2026));
        assert_eq!(next_month_start(unix(feb_29_2028)), unix(mar_1_2028));
        assert_eq!(next_month_start(unix(jul_1_2026 - 1)), unix(jul_1_2026));
        assert_eq!(civil_date(unix(feb_29_2024)), (2024, 2, 29));
        assert_eq!(civil_date(unix(jan_1_2026 - 1)), (2025, 12, 31));
        assert_eq!(utc_date(unix(mar_1_2028 + 86_399)), "2028-03-01");
        assert_eq!(days_from_civil(2028, 2, 29) * 86_400, feb_29_2028);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }
}
