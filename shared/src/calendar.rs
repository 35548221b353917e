//! Calendar rules, all in the customer's local time: whose "today" it is,
//! the send windows, business days (weekends, holidays), the day a step
//! fires, which due dates a run must read, and strict `YYYY-MM-DD` dates.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;

use crate::channel::Channel;

/// A daily window of local time, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Window {
    pub fn contains(&self, t: NaiveTime) -> bool {
        self.start <= t && t < self.end
    }

    /// `HH:MM-HH:MM` (`24:00` as an end); `None` unless the start comes first.
    pub fn parse(text: &str) -> Option<Self> {
        let (a, b) = text.split_once('-')?;
        let start = NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?;
        let end = if b.trim() == "24:00" {
            NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999)?
        } else {
            NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?
        };
        (start < end).then_some(Self { start, end })
    }
}

/// When steps may fire, in the customer's local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    pub send_window: Window,
    pub sms_window: Window,
    pub skip_weekends: bool,
    pub holidays: BTreeSet<NaiveDate>,
    /// The last step may still be sent this many days after its day.
    pub catch_up_days: u64,
}

impl Calendar {
    pub fn is_business_day(&self, day: NaiveDate) -> bool {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let closed = (self.skip_weekends && weekend) || self.holidays.contains(&day);
        !closed
    }

    /// The day a step whose nominal day is `day` fires: deferred to the next business day.
    pub fn effective_day(&self, day: NaiveDate) -> NaiveDate {
        let mut d = day;
        // Bounded: a year of holidays is refused at load time.
        for _ in 0..400 {
            if self.is_business_day(d) {
                return d;
            }
            d = d + Days::new(1);
        }
        d
    }

    /// Business days after `from` up to and including `to`, counted up to
    /// `limit + 1` at most (enough to tell whether `limit` is passed).
    pub fn business_days_between(&self, from: NaiveDate, to: NaiveDate, limit: u64) -> u64 {
        let mut count = 0;
        let mut d = from;
        while d < to && count <= limit {
            d = d + Days::new(1);
            if self.is_business_day(d) {
                count += 1;
            }
        }
        count
    }

    /// Whether `channel` may be sent at local time `t`.
    pub fn open(&self, channel: Channel, t: NaiveTime) -> bool {
        self.send_window.contains(t) && (channel != Channel::Sms || self.sms_window.contains(t))
    }
}

impl Calendar {
    /// 09:00-17:00, SMS 08:00-21:00, every day a business day, 14 days of catch-up.
    pub fn defaults() -> Self {
        Self {
            send_window: Window::parse("09:00-17:00").expect("valid"),
            sms_window: Window::parse("08:00-21:00").expect("valid"),
            skip_weekends: false,
            holidays: BTreeSet::new(),
            catch_up_days: 14,
        }
    }
}

impl Calendar {
    /// The business day on which a step `offset_days` from `due` fires.
    pub fn step_day(&self, offset_days: i64, due: NaiveDate) -> NaiveDate {
        let nominal = due
            .checked_add_signed(chrono::Duration::days(offset_days))
            .unwrap_or(due);
        self.effective_day(nominal)
    }
}

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

/// Strict `YYYY-MM-DD`: `2026-02-30` and `2026-2-3` are refused.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    /// Holidays close a day whether or not weekends are skipped, as
    /// `infra/policy.toml` says.
    #[test]
    fn holidays_close_a_day_with_or_without_skipped_weekends() {
        let christmas = chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap();
        let saturday = chrono::NaiveDate::from_ymd_opt(2026, 12, 26).unwrap();
        for skip_weekends in [false, true] {
            let cal = super::Calendar {
                skip_weekends,
                holidays: [christmas].into(),
                ..super::Calendar::defaults()
            };
            assert!(!cal.is_business_day(christmas));
            assert_eq!(cal.is_business_day(saturday), !skip_weekends);
            let next = if skip_weekends { 28 } else { 26 };
            assert_eq!(
                cal.effective_day(christmas),
                chrono::NaiveDate::from_ymd_opt(2026, 12, next).unwrap()
            );
        }
    }

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
