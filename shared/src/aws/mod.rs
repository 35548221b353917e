//! Thin adapters over the AWS SDK, one per port of [`crate::ports`]: the
//! DynamoDB store ([`DynamoStore`], its run-facing operations listed in
//! `port`: the due index and run state in `index`, claims in `claims`, what
//! follows a claim in `outcomes`, payments in `payments`, pay links in `links`), the SES v2 mailer ([`SesMailer`]), the
//! SNS texter ([`SnsTexter`]) and event publisher ([`SnsPublisher`]); and the
//! SQS work queue, Secrets Manager and the SDK's settings. Clients are built
//! once per process from one `SdkConfig`.

pub mod claims;
pub mod customers;
mod edits;
pub mod errors;
pub mod events;
mod index;
pub mod links;
pub mod mail;
pub mod mail_events;
pub mod operations;
mod outcomes;
pub mod payments;
mod port;
pub mod queue;
pub mod reports;
pub mod requeue;
pub mod sdk;
pub mod secrets;
pub mod sms;
pub mod store;
pub mod stream;

pub use errors::classify;
pub use events::SnsPublisher;
pub use mail::SesMailer;
pub use sms::SnsTexter;
pub use store::{raw_invoice, DynamoStore, Item};
