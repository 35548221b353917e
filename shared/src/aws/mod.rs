//! Thin adapters over the AWS SDK: the DynamoDB store, the SES v2 mailer and
//! the SNS texter. Clients are built once per process from one `SdkConfig`.

pub mod claims;
mod errors;
pub mod mail;
pub mod payments;
pub mod queue;
pub mod sdk;
pub mod secrets;
pub mod sms;
pub mod store;

pub use errors::{classify, SendError};
pub use mail::SesMailer;
pub use sms::SnsTexter;
pub use store::{DynamoStore, StoreError};
