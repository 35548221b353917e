//! What happened to each invoice of a run, typed, and the summary's
//! bookkeeping of it: every stage returns [`Counted`] outcomes and
//! [`tally`] is the one place they enter the [`RunSummary`].

use crate::claim::Lost;
use crate::summary::{RunSummary, SkipReason, SystemicStop, Target};

/// What happened to one invoice's message (or escalation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Sent,
    /// The provider's (or our own) error code.
    Failed(String),
    Skipped(SkipReason),
    /// Dry run: would have been claimed and sent.
    Planned,
    /// Not sent because of a systemic failure (this message's, or the one
    /// that stopped `scope` for the run): waits in `retry` for a later run.
    Stopped {
        scope: String,
        code: String,
    },
}

/// One outcome, under its step and target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counted<'p> {
    pub step: &'p str,
    pub target: Target,
    pub outcome: Outcome,
}

impl From<Lost> for SkipReason {
    fn from(lost: Lost) -> Self {
        match lost {
            Lost::AlreadyClaimed => Self::AlreadyClaimed,
            Lost::InvoiceChanged => Self::InvoiceChanged,
        }
    }
}

/// True when every invoice of a message was lost to its claim (already
/// claimed, or changed): the customer's next message may be tried.
pub(crate) fn all_lost(outcomes: &[Counted<'_>]) -> bool {
    outcomes.iter().all(|c| {
        matches!(
            c.outcome,
            Outcome::Skipped(SkipReason::AlreadyClaimed | SkipReason::InvoiceChanged)
        )
    })
}

/// Counts one outcome in the summary.
pub(crate) fn tally(summary: &mut RunSummary, counted: Counted<'_>) {
    let outcomes = summary.outcomes_mut(counted.step, counted.target);
    match counted.outcome {
        Outcome::Sent => outcomes.sent += 1,
        Outcome::Planned => outcomes.planned += 1,
        Outcome::Skipped(reason) => {
            outcomes.skipped += 1;
            *summary.skipped.entry(reason).or_default() += 1;
        }
        Outcome::Failed(code) => {
            outcomes.failed += 1;
            RunSummary::count(&mut summary.failed, &code);
        }
        Outcome::Stopped { scope, code } => {
            outcomes.retry += 1;
            let stop = summary
                .systemic
                .entry(scope)
                .or_insert_with(|| SystemicStop { code, messages: 0 });
            stop.messages += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;

    fn counted(outcome: Outcome) -> Counted<'static> {
        Counted {
            step: "due_today",
            target: Target::Channel(Channel::Email),
            outcome,
        }
    }

    #[test]
    fn a_message_is_lost_only_when_every_invoice_was_lost_to_its_claim() {
        let lost = counted(Outcome::Skipped(SkipReason::AlreadyClaimed));
        let changed = counted(Outcome::Skipped(SkipReason::InvoiceChanged));
        assert!(all_lost(&[lost.clone(), changed.clone()]));
        assert!(!all_lost(&[lost.clone(), counted(Outcome::Sent)]));
        assert!(!all_lost(&[counted(Outcome::Skipped(
            SkipReason::CustomerCap
        ))]));
        assert!(!all_lost(&[counted(Outcome::Failed("X".into())), changed]));
    }

    #[test]
    fn tally_counts_each_outcome_under_its_step_target_and_reason() {
        let mut s = RunSummary::default();
        for o in [
            Outcome::Sent,
            Outcome::Sent,
            Outcome::Planned,
            Outcome::Failed("Throttling".into()),
            Outcome::Skipped(SkipReason::CustomerCap),
            Outcome::Stopped {
                scope: "email".into(),
                code: "AccessDenied".into(),
            },
        ] {
            tally(&mut s, counted(o));
        }
        assert_eq!(
            s.systemic["email"],
            SystemicStop {
                code: "AccessDenied".into(),
                messages: 1
            }
        );
        assert_eq!(
            s.outcomes("due_today", Target::Channel(Channel::Email))
                .retry,
            1
        );
        let o = s.outcomes("due_today", Target::Channel(Channel::Email));
        assert_eq!((o.sent, o.planned, o.failed, o.skipped), (2, 1, 1, 1));
        assert_eq!(s.failed["Throttling"], 1);
        assert_eq!(s.skipped(SkipReason::CustomerCap), 1);
        assert!(s.left_work(), "a failed send is retried by a later run");
    }
}
