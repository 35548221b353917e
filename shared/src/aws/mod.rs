//! Thin adapters over the AWS SDK, one per port of [`crate::ports`]: the
//! DynamoDB store ([`DynamoStore`]: the due index, claims and the ledger in
//! `claims`, payments in `payments`), the SES v2 mailer ([`SesMailer`]), the
//! SNS texter ([`SnsTexter`]) and event publisher ([`SnsPublisher`]); and the
//! SQS work queue, Secrets Manager and the SDK's settings. Clients are built
//! once per process from one `SdkConfig`.

pub mod claims;
mod errors;
pub mod events;
pub mod mail;
pub mod payments;
pub mod queue;
pub mod sdk;
pub mod secrets;
pub mod sms;
pub mod store;

pub use errors::classify;
pub use events::SnsPublisher;
pub use mail::SesMailer;
pub use sms::SnsTexter;
pub use store::DynamoStore;
