//! In-memory adapters for tests (feature `test-util`): a store with the same
//! conditional semantics as the DynamoDB one ([`MemoryStore`]: claims that
//! conflict, leases that expire, guarded updates that refuse a changed
//! invoice, payments that wait for an in-flight mark), and senders that
//! record what they were given ([`Recorder`]). `tests/tests/contract.rs`
//! runs one suite against this store and the DynamoDB store on moto.

mod memory;
mod recorder;

pub use memory::{MemorySnapshot, MemoryStore};
pub use recorder::{PublishedEvent, Recorded, Recorder, SentEmail, SentSms};

use crate::config::Config;
use crate::run::{Adapters, Deps, SetupError};

/// A run over memory: [`MemoryStore`] and a [`Recorder`] for every sender.
#[derive(Debug)]
pub struct InMemory;

impl Adapters for InMemory {
    type Store = MemoryStore;
    type Mail = Recorder;
    type Sms = Recorder;
    type Events = Recorder;
}

/// A run's dependencies over a new memory store; one recorder shared by
/// the mailer, the texter and the publisher (`deps.mail.recorded()` has all).
pub fn deps(config: Config) -> Result<Deps<InMemory>, SetupError> {
    deps_over(config, MemoryStore::new(), Recorder::default())
}

/// A run's dependencies over an existing store and recorder (clones share
/// their state: several runs over one store race as on DynamoDB).
pub fn deps_over(
    config: Config,
    store: MemoryStore,
    recorder: Recorder,
) -> Result<Deps<InMemory>, SetupError> {
    Deps::with_adapters(config, store, recorder.clone(), recorder.clone(), recorder)
}
