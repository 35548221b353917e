//! Invoice dunning on AWS: the library behind the `dunning-run` Lambda and the
//! `dunning-admin` CLI.
//!
//! Pure modules (no I/O, unit- and property-tested): [`money`], [`contact`],
//! [`invoice`], [`calendar`], [`policy`], [`paylink`], [`render`], [`ledger`],
//! [`summary`], [`config`]. Adapters over the AWS SDK: [`aws`]. The run
//! itself, wiring both together: [`run`].

pub mod audit;
pub mod aws;
pub mod calendar;
pub mod config;
pub mod contact;
pub mod decide;
pub mod fanout;
pub mod import;
pub mod invoice;
pub mod ledger;
pub mod money;
pub mod paylink;
pub mod policy;
pub mod preview;
pub mod rate;
pub mod reads;
pub mod render;
pub mod run;
pub mod segments;
pub mod summary;
pub mod telemetry;
mod templates;
pub mod webhook;
