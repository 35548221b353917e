//! The weekly report e-mail (pure): which week an instant is in, and the
//! message (the HTML report, and its figures as text for the plain part).
//! Sent by the run function's report mode ([`crate::aws::reports`]), once
//! per week.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{html, text, Report};
use crate::render::EmailContent;

/// The ISO week of `now` in the business's calendar (`2026-W49`): the key
/// that makes the week's report go once.
pub fn week(now: DateTime<Utc>, business_tz: Tz) -> String {
    crate::calendar::local_date(now, business_tz)
        .format("%G-W%V")
        .to_string()
}

/// The e-mail of `report` for the week `week`.
pub fn email(report: &Report, business_name: &str, week: &str) -> EmailContent {
    let title = format!("{business_name}: receivables, week {week}");
    let mut plain = format!("{title}\n\n");
    plain.push_str(&text::table(report));
    plain.push_str(
        "\nThe HTML part has the same figures with charts; docs/reports.md defines each.\n",
    );
    EmailContent {
        subject: title.clone(),
        html: html::html(report, &title),
        text: plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_is_the_business_s_iso_week() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        // Monday 7 December 2026, 08:00 in Tokyo is still Sunday in UTC.
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(week(at("2026-12-06T23:00:00Z"), tokyo), "2026-W50");
        assert_eq!(week(at("2026-12-06T23:00:00Z"), Tz::UTC), "2026-W49");
        // The ISO year: 1 January 2027 is in 2026's week 53.
        assert_eq!(week(at("2027-01-01T12:00:00Z"), Tz::UTC), "2026-W53");
    }
}

#[cfg(test)]
mod email_tests {
    use super::*;
    use crate::report::{build, ReportInput};

    #[test]
    fn the_plain_part_has_the_figures_of_the_html_part() {
        let mut raw = crate::invoice::RawInvoice::default();
        for (k, v) in [
            ("invoice_id", "A"),
            ("customer_id", "C"),
            ("customer_name", "C"),
            ("email", "x@example.com"),
            ("amount", "1250.00"),
            ("currency", "USD"),
            ("due_date", "2026-11-01"),
            ("status", "open"),
        ] {
            raw.insert(k, crate::invoice::RawValue::Text(v.into()));
        }
        let input = ReportInput {
            open: vec![(crate::invoice::Invoice::parse(&raw).unwrap(), Vec::new())],
            ..ReportInput::default()
        };
        let now = "2026-12-07T08:00:00Z".parse().unwrap();
        let report = build(&input, &[], now, Tz::UTC);
        let email = email(&report, "Acme Ltd", "2026-W50");
        assert_eq!(email.subject, "Acme Ltd: receivables, week 2026-W50");
        assert!(email.text.contains("1,250.00"), "{}", email.text);
        assert!(email.text.contains("Most overdue, USD"));
        assert!(email
            .html
            .contains(r#"data-total="USD" data-amount="1250.00""#));
    }
}
