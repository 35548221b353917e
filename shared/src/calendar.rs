//! Calendar rules: whose "today" it is, and which due dates a run must read.

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

/// The local calendar date at `instant` in `tz`.
pub fn local_date(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

/// The inclusive range of due dates a run at `instant` must read so that every
/// invoice whose ladder has a step within `lead_days` before or `lag_days`
/// after its due date is found, in any time zone (local dates lie within one
/// day of the UTC date: UTC-12 to UTC+14).
pub fn due_date_window(
    instant: DateTime<Utc>,
    lead_days: u64,
    lag_days: u64,
) -> (NaiveDate, NaiveDate) {
    let utc_today = instant.date_naive();
    let from = utc_today - Days::new(lag_days + 1);
    let to = utc_today + Days::new(lead_days + 1);
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn local_date_follows_the_zone_not_utc() {
        let instant = at("2026-11-23T03:00:00Z");
        assert_eq!(local_date(instant, Tz::UTC).to_string(), "2026-11-23");
        assert_eq!(
            local_date(instant, chrono_tz::America::New_York).to_string(),
            "2026-11-22"
        );
        assert_eq!(
            local_date(instant, chrono_tz::Pacific::Auckland).to_string(),
            "2026-11-23"
        );
        let late = at("2026-11-23T12:30:00Z");
        assert_eq!(
            local_date(late, chrono_tz::Pacific::Auckland).to_string(),
            "2026-11-24"
        );
    }

    proptest! {
        #[test]
        fn every_zone_local_date_is_inside_the_window(secs in 0i64..4_000_000_000, lead in 0u64..40, lag in 0u64..60) {
            let instant = DateTime::from_timestamp(secs, 0).unwrap();
            let (from, to) = due_date_window(instant, lead, lag);
            for tz in [chrono_tz::Pacific::Kiritimati, chrono_tz::Etc::GMTPlus12, chrono_tz::Pacific::Auckland, chrono_tz::Pacific::Honolulu] {
                let today = local_date(instant, tz);
                // A step `lag` days after due: the due date is today - lag, which must be >= from.
                prop_assert!(today - Days::new(lag) >= from);
                prop_assert!(today + Days::new(lead) <= to);
            }
        }
    }
}
