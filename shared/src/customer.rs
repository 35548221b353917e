//! The customer record: what belongs to a customer and not to one invoice
//! (`customer#<customer_id>` / `record`, beside the contact log the cap
//! uses): channel opt-outs and suppressed addresses, each with its source and
//! instant, and a pause. Pure: changes are values applied to a record; the
//! store reads and writes it (`aws::customers`), `dunning-admin customer`
//! shows and changes it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::channel::Channel;

/// The source of a suppression after an SES permanent bounce.
pub const BOUNCE_SOURCE: &str = "ses:bounce";
/// The source of an e-mail opt-out after an SES complaint.
pub const COMPLAINT_SOURCE: &str = "ses:complaint";

/// The source of an SMS opt-out after SNS refused a publish (`OptedOut`).
pub const SNS_OPT_OUT_SOURCE: &str = "sns:opt-out";

/// The source of an e-mail opt-out from a reminder's unsubscribe link.
pub const UNSUBSCRIBE_SOURCE: &str = "unsubscribe";

pub use crate::contact::{MAX_EMAILS, MAX_PHONES};

/// Sort key of the customer record, under `customer#<customer_id>`.
pub const CUSTOMER_SK: &str = "record";

/// Who or what set a mark, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// `cli:<who>`, `ses:bounce`, `ses:complaint`, `unsubscribe`, `sns:opt-out`, ...
    pub source: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// Channel (`email`, `sms`) -> the opt-out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub opt_outs: BTreeMap<String, Mark>,
    /// Address (lower case) -> why it is never used again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppressed: BTreeMap<String, Mark>,
    /// No reminders before this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<DateTime<Utc>>,
    /// Who paused, when and why (a pause a reply made has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<Mark>,
    /// When the customer last replied to a reminder (not what they wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replied_at: Option<DateTime<Utc>>,
    /// The customer's language and time zone, for invoices that give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// E-mail addresses (at most [`MAX_EMAILS`]): the first is the primary,
    /// the others get copies. Invoices without an `email` inherit them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<String>,
    /// Phone numbers (at most [`MAX_PHONES`]): the first primary, the other a copy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<String>,
    /// Bumped by every change: a write expects the version it read.
    #[serde(default)]
    pub version: u64,
}

/// One change to a customer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    OptOut {
        channel: Channel,
        mark: Mark,
    },
    OptIn {
        channel: Channel,
    },
    Suppress {
        address: String,
        mark: Mark,
    },
    Unsuppress {
        address: String,
    },
    Pause {
        until: DateTime<Utc>,
        mark: Mark,
    },
    Resume,
    /// The customer replied at `at`: reminders wait at least until `pause_until`
    /// (a longer pause stays as it is).
    Replied {
        at: DateTime<Utc>,
        pause_until: DateTime<Utc>,
    },
    /// The language (`None`: the business default).
    Locale(Option<String>),
    /// The time zone (`None`: the business's).
    Timezone(Option<String>),
    /// The e-mail addresses, primary first (validated: [`Change::emails`]).
    Emails(Vec<String>),
    /// The phone numbers, primary first (validated: [`Change::phones`]).
    Phones(Vec<String>),
}

/// A setting that cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("at most {MAX_EMAILS} e-mail addresses, each valid")]
    Emails,
    #[error("at most {MAX_PHONES} phone numbers, each in E.164 form (+ and digits)")]
    Phones,
    #[error("not an IANA time zone (e.g. Europe/London)")]
    Timezone,
    #[error("not a language tag (e.g. en, zh-Hans)")]
    Locale,
}

impl Change {
    /// The addresses as kept (trimmed, without duplicates), or why not.
    pub fn emails(list: &[String]) -> Result<Self, SettingError> {
        let mut kept: Vec<String> = Vec::new();
        for a in list.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
            let a = crate::contact::EmailAddress::parse(a).ok_or(SettingError::Emails)?;
            if !kept.iter().any(|k| k.eq_ignore_ascii_case(a.as_str())) {
                kept.push(a.as_str().to_owned());
            }
        }
        if kept.len() > MAX_EMAILS {
            return Err(SettingError::Emails);
        }
        Ok(Self::Emails(kept))
    }

    /// The numbers as kept, or why not.
    pub fn phones(list: &[String]) -> Result<Self, SettingError> {
        let mut kept: Vec<String> = Vec::new();
        for p in list.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let p = crate::contact::PhoneNumber::parse(p).ok_or(SettingError::Phones)?;
            if !kept.iter().any(|k| k == p.as_str()) {
                kept.push(p.as_str().to_owned());
            }
        }
        if kept.len() > MAX_PHONES {
            return Err(SettingError::Phones);
        }
        Ok(Self::Phones(kept))
    }

    /// A time zone (empty: none).
    pub fn timezone(name: &str) -> Result<Self, SettingError> {
        match name.trim() {
            "" => Ok(Self::Timezone(None)),
            t => t
                .parse::<chrono_tz::Tz>()
                .map(|tz| Self::Timezone(Some(tz.name().to_owned())))
                .map_err(|_| SettingError::Timezone),
        }
    }

    /// A language tag (empty: none).
    pub fn locale(tag: &str) -> Result<Self, SettingError> {
        let tag = tag.trim();
        let ok = tag.len() <= 35
            && tag
                .split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        match tag {
            "" => Ok(Self::Locale(None)),
            t if ok => Ok(Self::Locale(Some(t.to_owned()))),
            _ => Err(SettingError::Locale),
        }
    }

    /// Whether the change sets something invoices inherit (runs then read
    /// records before deciding: `ReadState::customer_settings`).
    pub fn is_setting(&self) -> bool {
        matches!(
            self,
            Change::Locale(Some(_))
                | Change::Timezone(Some(_))
                | Change::Emails(_)
                | Change::Phones(_)
        )
    }

    /// The SMS opt-out SNS told us of at `at` (`sns:opt-out`), and how.
    pub fn sns_opt_out(at: DateTime<Utc>, how: &str) -> Self {
        Change::OptOut {
            channel: Channel::Sms,
            mark: Mark {
                source: SNS_OPT_OUT_SOURCE.into(),
                at,
                reason: Some(how.into()),
            },
        }
    }
}

impl CustomerRecord {
    /// Applies `change`; false when it changes nothing (applying it again is
    /// idempotent: the first mark, with its source and instant, is kept).
    pub fn apply(&mut self, change: &Change) -> bool {
        let changed = match change {
            Change::OptOut { channel, mark } => {
                let key = channel.as_str().to_owned();
                !self.opt_outs.contains_key(&key)
                    && self.opt_outs.insert(key, mark.clone()).is_none()
            }
            Change::OptIn { channel } => self.opt_outs.remove(channel.as_str()).is_some(),
            Change::Suppress { address, mark } => {
                let key = address.trim().to_lowercase();
                !self.suppressed.contains_key(&key)
                    && self.suppressed.insert(key, mark.clone()).is_none()
            }
            Change::Unsuppress { address } => self
                .suppressed
                .remove(&address.trim().to_lowercase())
                .is_some(),
            Change::Pause { until, mark } => {
                let changed = self.paused_until != Some(*until);
                if changed {
                    self.paused_until = Some(*until);
                    self.paused_by = Some(mark.clone());
                }
                changed
            }
            Change::Resume => {
                self.paused_by = None;
                self.paused_until.take().is_some()
            }
            Change::Replied { at, pause_until } => {
                let newer = self.replied_at.is_none_or(|r| r < *at);
                if newer {
                    self.replied_at = Some(*at);
                }
                let longer = self.paused_until.is_none_or(|p| p < *pause_until);
                if longer {
                    self.paused_until = Some(*pause_until);
                }
                newer || longer
            }
            Change::Locale(v) => replace(&mut self.locale, v.clone()),
            Change::Timezone(v) => replace(&mut self.timezone, v.clone()),
            Change::Emails(v) => replace(&mut self.emails, v.clone()),
            Change::Phones(v) => replace(&mut self.phones, v.clone()),
        };
        if changed {
            self.version += 1;
        }
        changed
    }

    /// Whether the customer takes reminders on `channel` (not opted out).
    pub fn accepts(&self, channel: Channel) -> bool {
        !self.opt_outs.contains_key(channel.as_str())
    }

    /// Whether `address` must never be used again for this customer.
    pub fn is_suppressed(&self, address: &str) -> bool {
        self.suppression(address).is_some()
    }

    /// Why `address` is never used again, if it is not.
    pub fn suppression(&self, address: &str) -> Option<&Mark> {
        self.suppressed.get(&address.trim().to_lowercase())
    }

    /// Whether reminders are paused at `now`.
    pub fn paused_at(&self, now: DateTime<Utc>) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }

    /// Whether the record holds settings an invoice inherits.
    pub fn has_settings(&self) -> bool {
        self.locale.is_some()
            || self.timezone.is_some()
            || !self.emails.is_empty()
            || !self.phones.is_empty()
    }

    /// Fills in what an invoice item does not give itself: its language and
    /// time zone, and its contacts. An invoice without an `email` gets the
    /// record's primary address and the others as copies (`cc_emails`);
    /// likewise its `phone` (`cc_phones`). An invoice with its own keeps it,
    /// and gets no copies: what it sets is what it means.
    pub fn fill(&self, raw: &mut crate::invoice::RawInvoice) {
        use crate::invoice::RawValue;
        for (name, value) in [("locale", &self.locale), ("timezone", &self.timezone)] {
            if let (true, Some(v)) = (raw.lacks(name), value) {
                raw.insert(name, RawValue::Text(v.clone()));
            }
        }
        for (name, copies, list) in [
            ("email", "cc_emails", &self.emails),
            ("phone", "cc_phones", &self.phones),
        ] {
            if let (true, Some((primary, rest))) = (raw.lacks(name), list.split_first()) {
                raw.insert(name, RawValue::Text(primary.clone()));
                if !rest.is_empty() {
                    raw.insert(copies, RawValue::List(rest.to_vec()));
                }
            }
        }
    }
}

/// Sets `slot` to `value`; whether it changed.
fn replace<T: PartialEq>(slot: &mut T, value: T) -> bool {
    let changed = *slot != value;
    *slot = value;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(source: &str) -> Mark {
        Mark {
            source: source.into(),
            at: "2026-12-01T10:00:00Z".parse().unwrap(),
            reason: None,
        }
    }

    #[test]
    fn changes_apply_once_keep_the_first_mark_and_reverse() {
        let mut r = CustomerRecord::default();
        let out = Change::OptOut {
            channel: Channel::Email,
            mark: mark("cli:ana"),
        };
        assert!(r.apply(&out));
        assert!(!r.accepts(Channel::Email) && r.accepts(Channel::Sms));
        let again = Change::OptOut {
            channel: Channel::Email,
            mark: mark("ses:complaint"),
        };
        assert!(!r.apply(&again), "idempotent");
        assert_eq!(
            r.opt_outs["email"].source, "cli:ana",
            "the first mark stays"
        );
        assert_eq!(r.version, 1);
        assert!(r.apply(&Change::OptIn {
            channel: Channel::Email
        }));
        assert!(r.accepts(Channel::Email));
        assert!(r.apply(&Change::Suppress {
            address: " Ana@Example.com ".into(),
            mark: mark("ses:bounce"),
        }));
        assert!(r.is_suppressed("ana@example.com"));
        assert!(r.apply(&Change::Unsuppress {
            address: "ANA@example.com".into()
        }));
        assert!(!r.is_suppressed("ana@example.com"));
        let until: DateTime<Utc> = "2026-12-10T00:00:00Z".parse().unwrap();
        let pause = Change::Pause {
            until,
            mark: mark("cli:ana"),
        };
        assert!(r.apply(&pause));
        assert!(!r.apply(&pause));
        assert_eq!(r.paused_by, Some(mark("cli:ana")));
        assert!(r.paused_at("2026-12-09T00:00:00Z".parse().unwrap()));
        assert!(!r.paused_at(until));
        assert!(r.apply(&Change::Resume) && !r.apply(&Change::Resume));
        assert_eq!(r.version, 6);
        // A reply pauses, never shortens a longer pause, and applies once.
        let at: DateTime<Utc> = "2026-12-02T08:00:00Z".parse().unwrap();
        let five = at + chrono::Duration::days(5);
        let replied = Change::Replied {
            at,
            pause_until: five,
        };
        assert!(r.apply(&replied) && !r.apply(&replied));
        assert_eq!((r.replied_at, r.paused_until), (Some(at), Some(five)));
        let later: DateTime<Utc> = "2026-12-30T00:00:00Z".parse().unwrap();
        assert!(r.apply(&Change::Pause {
            until: later,
            mark: mark("cli:bo"),
        }));
        assert!(r.apply(&Change::Replied {
            at: at + chrono::Duration::hours(1),
            pause_until: five
        }));
        assert_eq!(r.paused_until, Some(later), "the longer pause stays");
    }

    #[test]
    fn settings_are_validated_and_filled_into_invoices_that_leave_them_out() {
        use crate::invoice::{Invoice, RawInvoice, RawValue};
        let mut r = CustomerRecord::default();
        let emails =
            |l: &[&str]| Change::emails(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let phones =
            |l: &[&str]| Change::phones(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(emails(&["a@x.example", "nope"]), Err(SettingError::Emails));
        let six = ["a", "b", "c", "d", "e", "f"].map(|n| format!("{n}@x.example"));
        assert_eq!(Change::emails(&six), Err(SettingError::Emails), "at most 5");
        assert_eq!(
            phones(&["+15555550100", "+15555550101", "+15555550102"]),
            Err(SettingError::Phones)
        );
        assert_eq!(Change::timezone("Mars/Base"), Err(SettingError::Timezone));
        assert_eq!(Change::locale("zh Hans"), Err(SettingError::Locale));
        for change in [
            emails(&["ap@x.example", "AP@x.example", "cfo@x.example"]).unwrap(),
            phones(&["+15555550100"]).unwrap(),
            Change::timezone("Asia/Tokyo").unwrap(),
            Change::locale("zh-Hans").unwrap(),
        ] {
            assert!(change.is_setting());
            assert!(r.apply(&change) && !r.apply(&change), "once: {change:?}");
        }
        assert_eq!(
            r.emails,
            ["ap@x.example", "cfo@x.example"],
            "duplicates dropped"
        );
        let base = |extra: &[(&str, &str)]| {
            let mut raw = RawInvoice::default();
            for (k, v) in [
                ("invoice_id", "INV-1"),
                ("customer_id", "C-1"),
                ("customer_name", "Ana"),
                ("amount", "10.00"),
                ("currency", "USD"),
                ("due_date", "2026-12-01"),
                ("status", "open"),
            ]
            .iter()
            .chain(extra)
            {
                raw.insert(*k, RawValue::Text((*v).into()));
            }
            raw
        };
        // Nothing of its own: all inherited, the other address a copy.
        let mut bare = base(&[]);
        r.fill(&mut bare);
        let inv = Invoice::parse(&bare).unwrap();
        assert_eq!(inv.email.unwrap().as_str(), "ap@x.example");
        assert_eq!(inv.email_copies.len(), 1);
        assert_eq!(inv.phone.unwrap().as_str(), "+15555550100");
        assert_eq!(
            (inv.timezone.unwrap().name(), inv.locale.as_deref()),
            ("Asia/Tokyo", Some("zh-Hans"))
        );
        // Its own address and zone win, and then no copies.
        let mut own = base(&[("email", "own@y.example"), ("timezone", "Europe/Paris")]);
        r.fill(&mut own);
        let inv = Invoice::parse(&own).unwrap();
        assert_eq!(inv.email.unwrap().as_str(), "own@y.example");
        assert!(inv.email_copies.is_empty());
        assert_eq!(inv.timezone.unwrap().name(), "Europe/Paris");
        assert!(!Change::Locale(None).is_setting(), "clearing needs no read");
    }

    #[test]
    fn a_record_round_trips_through_json_and_an_empty_one_is_small() {
        let mut r = CustomerRecord::default();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"version": 0})
        );
        r.apply(&Change::OptOut {
            channel: Channel::Sms,
            mark: mark("sns:opt-out"),
        });
        let back: CustomerRecord =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
