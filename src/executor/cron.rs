//! Five-field cron schedules (`minute hour day-of-month month day-of-week`) in a time zone, as
//! backup policies write them (SPEC §2.7), with cron's own rules:
//! * `*`, lists `1,15`, ranges `1-5`, steps `*/15` and `10-50/20`; month and weekday names
//!   (`JAN`, `MON`); weekday 0 and 7 are Sunday; `@hourly`, `@daily` (`@midnight`),
//!   `@weekly`, `@monthly`, `@yearly` (`@annually`).
//! * When both day fields are restricted, a day matches if either does.
//! * Daylight saving: a time the clocks skip runs once, at the first minute after the gap; a
//!   time the clocks repeat runs once, at its first occurrence.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A parsed schedule and its zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days: Vec<u32>,
    months: Vec<u32>,
    weekdays: Vec<u32>,
    days_restricted: bool,
    weekdays_restricted: bool,
    zone: Tz,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses one field into its sorted values within `min..=max`.
fn field(text: &str, min: u32, max: u32, names: &[&str], what: &str) -> Result<Vec<u32>, String> {
    let value = |word: &str| -> Result<u32, String> {
        let upper = word.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        word.parse::<u32>()
            .map_err(|_| format!("{what} '{word}' is not a number"))
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{what} step '{s}' is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step > 1 { max } else { v })
        };
        if low < min || high > max || low > high {
            return Err(format!("{what} '{part}' is outside {min}-{max}"));
        }
        out.extend((low..=high).step_by(step as usize));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl Schedule {
    /// Parses `expression` in `zone` (an IANA name such as `Europe/Paris`; UTC when absent).
    pub fn parse(expression: &str, zone: Option<&str>) -> Result<Schedule, String> {
        let zone: Tz = match zone {
            Some(name) => name
                .parse()
                .map_err(|_| format!("TIMEZONE '{name}' is not a time zone: write an IANA name such as 'Europe/Paris'"))?,
            None => Tz::UTC,
        };
        let text = match expression.trim().to_ascii_lowercase().as_str() {
            "@hourly" => "0 * * * *".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            other if other.starts_with('@') => {
                return Err(format!(
                    "SCHEDULE '{expression}' is not a cron macro: use @hourly, @daily, @weekly, @monthly or @yearly"
                ));
            }
            _ => expression.trim().to_string(),
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "SCHEDULE '{expression}' has {} fields: write 5 (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'",
                fields.len()
            ));
        }
        let mut weekdays = field(fields[4], 0, 7, &WEEKDAYS, "day of week")?;
        if weekdays.contains(&7) {
            weekdays.retain(|d| *d != 7);
            if !weekdays.contains(&0) {
                weekdays.insert(0, 0);
            }
        }
        Ok(Schedule {
            minutes: field(fields[0], 0, 59, &[], "minute")?,
            hours: field(fields[1], 0, 23, &[], "hour")?,
            days: field(fields[2], 1, 31, &[], "day of month")?,
            months: field(fields[3], 1, 12, &MONTHS, "month")?,
            weekdays,
            days_restricted: fields[2] != "*",
            weekdays_restricted: fields[4] != "*",
            zone,
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if !self.months.contains(&date.month()) {
            return false;
        }
        let dom = self.days.contains(&date.day());
        let dow = self
            .weekdays
            .contains(&date.weekday().num_days_from_sunday());
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// The instant a local time stands for: itself, the first of two (a repeated hour), or
    /// the first minute after a gap the clocks skipped.
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        for shift in 0..=180 {
            match self
                .zone
                .from_local_datetime(&(local + Duration::minutes(shift)))
            {
                LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
                LocalResult::None => continue,
            }
        }
        None
    }

    /// The first time the schedule fires strictly after `after`; `None` if never within about
    /// five years (a schedule such as `0 0 31 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local_after = after.with_timezone(&self.zone).naive_local();
        // Start a day early: a gap or a repeated hour can move an earlier local time past it.
        let mut date = local_after.date() - Duration::days(1);
        for _ in 0..(366 * 5 + 2) {
            if self.day_matches(date) {
                for hour in &self.hours {
                    for minute in &self.minutes {
                        let local = date.and_hms_opt(*hour, *minute, 0).expect("valid time");
                        if let Some(at) = self.instant(local)
                            && at > after
                        {
                            return Some(at);
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn runs(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut at = utc(from);
        (0..n)
            .map(|_| {
                at = schedule.next_after(at).unwrap();
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn fields_lists_ranges_steps_and_names() {
        let s = Schedule::parse("*/20 1-2 * JAN-FEB MON,fri", None).unwrap();
        assert_eq!(s.minutes, vec![0, 20, 40]);
        assert_eq!(s.hours, vec![1, 2]);
        assert_eq!(s.months, vec![1, 2]);
        assert_eq!(s.weekdays, vec![1, 5]);
        assert_eq!(
            Schedule::parse("0 0 * * 7", None).unwrap().weekdays,
            vec![0]
        );
        assert_eq!(
            Schedule::parse("5/15 * * * *", None).unwrap().minutes,
            vec![5, 20, 35, 50]
        );
        for bad in [
            "* * * *",
            "60 * * * *",
            "* * 0 * *",
            "*/0 * * * *",
            "@often",
            "a * * * *",
        ] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad}");
        }
        assert!(Schedule::parse("@daily", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn hourly_and_daily_in_utc() {
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(
            runs(&hourly, "2026-12-07T10:00:00Z", 2),
            ["2026-12-07T11:00:00+00:00", "2026-12-07T12:00:00+00:00"]
        );
        let daily = Schedule::parse("30 2 * * *", None).unwrap();
        assert_eq!(
            runs(&daily, "2026-12-07T02:30:00Z", 1),
            ["2026-12-08T02:30:00+00:00"]
        );
    }

    #[test]
    fn either_day_field_matches_when_both_are_restricted() {
        // The 1st of the month or any Monday.
        let s = Schedule::parse("0 0 1 * MON", None).unwrap();
        assert_eq!(
            runs(&s, "2026-12-01T00:00:00Z", 2),
            ["2026-12-07T00:00:00+00:00", "2026-12-14T00:00:00+00:00"]
        );
    }

    #[test]
    fn a_skipped_hour_runs_once_after_the_gap_and_a_repeated_hour_once() {
        // Europe/Paris: 2026-03-29 02:00 -> 03:00 (CET -> CEST); 2026-10-25 03:00 -> 02:00.
        let s = Schedule::parse("30 2 * * *", Some("Europe/Paris")).unwrap();
        // 02:30 does not exist on March 29: it runs at 03:00 CEST (01:00 UTC), once.
        assert_eq!(
            runs(&s, "2026-03-28T02:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        // 02:30 happens twice on October 25: it runs at the first (00:30 UTC), once.
        assert_eq!(
            runs(&s, "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
        // Every 15 minutes across the repeated hour: each local time once.
        let quarter = Schedule::parse("*/15 2 * * *", Some("Europe/Paris")).unwrap();
        assert_eq!(runs(&quarter, "2026-10-24T23:59:00Z", 5).len(), 5);
        assert_eq!(
            runs(&quarter, "2026-10-24T23:59:00Z", 5)[4],
            "2026-10-26T01:00:00+00:00"
        );
    }

    #[test]
    fn a_schedule_that_never_fires_says_so() {
        assert!(
            Schedule::parse("0 0 31 2 *", None)
                .unwrap()
                .next_after(Utc::now())
                .is_none()
        );
    }
}
