//! Invoice dunning on AWS: the library behind the `dunning-run`,
//! `payment-webhook` Lambdas and the `dunning-admin` CLI. See
//! `docs/architecture.md` for a map.
//!
//! The domain, pure (no I/O; unit- and property-tested): [`channel`],
//! [`money`], [`contact`], [`calendar`], [`cap`], [`invoice`], [`policy`],
//! [`decide`], [`reads`], [`fanout`], [`templates`], [`render`],
//! [`segments`], [`link`], [`claim`], [`ledger`], [`payment`],
//! [`summary`], [`import`], [`compose`], [`preview`], [`failure`];
//! [`config`] parses a lookup of variables (`from_env` is the only read of
//! the process environment). Small helpers with time in them: [`rate`] (the
//! send-rate limiter) and [`retry`] (backoff), both of which sleep. The
//! seams: [`ports`]. Adapters over the AWS SDK: [`aws`]. The run, wiring both
//! together: [`run`]; the webhook: [`webhook`]. In-memory adapters for
//! tests: `testing` (feature `test-util`).

pub mod audit;
pub mod aws;
pub mod calendar;
pub mod cap;
pub mod channel;
pub mod claim;
pub mod compose;
pub mod config;
pub mod contact;
pub mod customer;
pub mod decide;
pub mod edit;
pub mod failure;
pub mod fanout;
pub mod import;
pub mod invoice;
pub mod ledger;
pub mod link;
pub mod mail_events;
pub mod money;
pub mod next_at;
pub mod pay_page;
pub mod payment;
pub mod policy;
pub mod ports;
pub mod preview;
pub mod rate;
pub mod reads;
pub mod render;
pub mod report;
pub mod retry;
pub mod run;
pub mod segments;
pub mod stripe;
pub mod summary;
pub mod telemetry;
pub mod templates;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod webhook;
