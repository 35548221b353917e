//! Rendering what an invoice would receive, without claiming or sending: the
//! same context, templates and pay link as a run, for any step, locale and channel.

use chrono::{DateTime, Utc};

use crate::channel::Channel;
use crate::compose::Composer;
use crate::decide::{decide, late_fee_due};
use crate::invoice::Invoice;
use crate::policy::Action;
use crate::render::{InvoiceLine, Locale, ReminderContext};

/// What to preview; `None` means "as a run would choose".
#[derive(Debug, Clone)]
pub struct Preview<'a> {
    pub step: Option<&'a str>,
    pub locale: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub as_of: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no step `{0}` in the policy")]
    UnknownStep(String),
    #[error("no step is due at that instant ({0}); pass --step")]
    NothingDue(&'static str),
    #[error("step `{0}` escalates: it sends the customer no message")]
    Escalation(String),
    #[error("unknown locale `{0}` (en, zh-Hans, zh-Hant)")]
    UnknownLocale(String),
    #[error("unknown channel `{0}` (email or sms)")]
    UnknownChannel(String),
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
}

/// The rendered parts, as (file name, text): `subject.txt`, `body.txt`,
/// `body.html` for email, `sms.txt` for SMS.
pub fn render(
    composer: &Composer<'_>,
    invoice: &Invoice,
    p: &Preview<'_>,
) -> Result<Vec<(String, String)>, PreviewError> {
    let today = p
        .as_of
        .with_timezone(
            &invoice
                .timezone
                .unwrap_or(composer.messages.business_timezone),
        )
        .date_naive();
    // On a plan: the instalment the ladder runs on that day.
    let scheduled = invoice.scheduled(today, composer.policy.plan_default_days);
    let invoice = &scheduled;
    let step = match p.step {
        Some(name) => composer
            .policy
            .steps()
            .iter()
            .chain([composer.policy.promise_step()])
            .find(|s| s.name == name)
            .ok_or_else(|| PreviewError::UnknownStep(name.into()))?,
        None => {
            decide(
                composer.policy,
                invoice,
                p.as_of,
                composer.messages.business_timezone,
            )
            .map_err(|h| PreviewError::NothingDue(h.as_str()))?
            .step
        }
    };
    if step.action == Action::Escalate {
        return Err(PreviewError::Escalation(step.name.clone()));
    }
    let locale = match p.locale {
        Some(tag) => Locale::parse(tag).ok_or_else(|| PreviewError::UnknownLocale(tag.into()))?,
        None => Locale::resolve(invoice.locale.as_deref(), composer.messages.default_locale),
    };
    let channels: Vec<Channel> = match p.channel {
        Some(c) => vec![Channel::parse(c).ok_or_else(|| PreviewError::UnknownChannel(c.into()))?],
        None => Channel::ALL.to_vec(),
    };
    // The real link is made when the reminder is sent; this one has its length.
    let pay_link = composer.pay_link(&crate::link::LinkToken::placeholder());
    let line = InvoiceLine::new(
        invoice,
        today,
        pay_link,
        late_fee_due(step, invoice),
        locale,
    );
    let mut ctx = ReminderContext::new(
        locale,
        &composer.messages.business_name,
        &invoice.customer_name,
        &step.name,
        vec![line],
    )
    .ok_or(PreviewError::NothingDue("no_invoice"))?;
    ctx.contact_line = composer.messages.contact_line.clone();
    let mut parts = Vec::new();
    for channel in channels {
        match channel {
            Channel::Email => {
                let email = composer.renderer.email(&step.template, &ctx)?;
                parts.push(("subject.txt".into(), email.subject));
                parts.push(("body.txt".into(), email.text));
                parts.push(("body.html".into(), email.html));
            }
            Channel::Sms => parts.push((
                "sms.txt".into(),
                composer.renderer.sms(&step.template, &ctx)?,
            )),
        }
    }
    Ok(parts)
}
