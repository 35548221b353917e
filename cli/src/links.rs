//! `revoke-link`: a pay link stops opening its page (the page answers 410).

use anyhow::{bail, Result};
use chrono::Utc;
use dunning::aws::DynamoStore;
use dunning::link::LinkToken;
use dunning::ports::Links;

/// The token of a link as the customer received it, or the token alone.
fn token_of(link: &str) -> Option<LinkToken> {
    let path = link.split(['?', '#']).next()?.trim_end_matches('/');
    LinkToken::parse(path.rsplit('/').next()?)
}

pub async fn revoke(store: &DynamoStore, link: &str) -> Result<()> {
    let Some(token) = token_of(link) else {
        bail!("not a pay link: expected PAY_LINK_BASE_URL/<16-character token> or the token");
    };
    let now = Utc::now();
    if !store.revoke_link(&token, now).await? {
        bail!("no such pay link in table {}", store.table());
    }
    let link = store.get_link(&token).await?;
    let at = link.and_then(|l| l.revoked_at).unwrap_or(now);
    println!(
        "revoked at {}: the page answers 410 for it",
        at.to_rfc3339()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_or_its_token_names_the_token() {
        let t = "Zm9vYmFyZm9vYmFy";
        for link in [
            t.to_owned(),
            format!("https://pay.acme.example/{t}"),
            format!("https://pay.acme.example/p/{t}/?utm=x"),
        ] {
            assert_eq!(
                super::token_of(&link).map(|t| t.as_str().to_owned()),
                Some(t.to_owned()),
                "{link}"
            );
        }
        assert!(super::token_of("https://pay.acme.example/short").is_none());
    }
}
