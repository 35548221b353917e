//! What composing a reminder needs, in one place: the business's settings
//! ([`MessageConfig`]), the policy and the templates.
//! A run lends its own (`Deps::composer`); [`Standalone`] loads them with
//! nothing else, for `dunning-admin preview --file`.

use crate::config::MessageConfig;
use crate::link::LinkToken;
use crate::policy::{Policy, PolicyLoadError};
use crate::render::{OverrideError, Renderer};

/// Why the templates or the policy cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error(transparent)]
    Policy(#[from] PolicyLoadError),
    #[error(transparent)]
    Templates(#[from] OverrideError),
}

/// What composing a reminder needs: the business's settings, the policy,
/// the templates. A run lends its own
/// (`Deps::composer`); [`Standalone`] loads them with nothing else.
#[derive(Clone, Copy)]
pub struct Composer<'a> {
    pub messages: &'a MessageConfig,
    pub policy: &'a Policy,
    pub renderer: &'a Renderer,
}

impl Composer<'_> {
    /// A message's link to the pay page for a token.
    pub fn pay_link(&self, token: &LinkToken) -> String {
        token.url(&self.messages.pay_link_base_url)
    }
}

/// Composition without a store or senders: `dunning-admin preview --file`.
pub struct Standalone {
    pub messages: MessageConfig,
    pub policy: Policy,
    pub renderer: Renderer,
}

impl Standalone {
    pub fn load(messages: MessageConfig) -> Result<Self, ContentError> {
        let (renderer, policy) = load_content(&messages)?;
        Ok(Self {
            messages,
            policy,
            renderer,
        })
    }

    pub fn composer(&self) -> Composer<'_> {
        Composer {
            messages: &self.messages,
            policy: &self.policy,
            renderer: &self.renderer,
        }
    }
}

/// The templates (built in, and `TEMPLATE_DIR` over them) and the policy
/// (`POLICY_FILE`, else the compiled-in default, its templates checked).
pub fn load_content(messages: &MessageConfig) -> Result<(Renderer, Policy), ContentError> {
    let renderer = match &messages.template_dir {
        None => Renderer::new(),
        Some(dir) => Renderer::with_overrides(std::path::Path::new(dir))?,
    };
    let policy = Policy::load(messages.policy_file.as_deref(), |t| {
        renderer.has_template(t)
    })?;
    Ok((renderer, policy))
}
