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
}

impl Change {
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
