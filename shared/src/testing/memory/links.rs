//! Pay links in memory: the same records and conditions as `aws::links`.

use chrono::{DateTime, Utc};

use super::{get_text, rfc3339, text, MemoryStore, Record};
use crate::invoice::RawValue;
use crate::link::{LinkTarget, LinkToken, PayLink};
use crate::ports::{Links, StoreError};

fn key(token: &LinkToken) -> (String, String) {
    (format!("link#{}", token.as_str()), "link".to_owned())
}

fn link_of(token: &LinkToken, r: &Record) -> Option<PayLink> {
    let instant = |name: &str| {
        get_text(r, name)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let id = get_text(r, "target_id")?.to_owned();
    let target = match get_text(r, "target_kind")? {
        "invoice" => LinkTarget::Invoice(id),
        "customer" => LinkTarget::Customer(id),
        _ => return None,
    };
    Some(PayLink {
        token: token.clone(),
        target,
        created_at: instant("created_at")?,
        expires_at: instant("expires_at")?,
        revoked_at: match get_text(r, "revoked_at") {
            None => None,
            Some(_) => Some(instant("revoked_at")?),
        },
    })
}

impl Links for MemoryStore {
    async fn put_link(&self, link: &PayLink) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let k = key(&link.token);
        if inner.records.contains_key(&k) {
            return Ok(false);
        }
        let (kind, id) = match &link.target {
            LinkTarget::Invoice(id) => ("invoice", id),
            LinkTarget::Customer(id) => ("customer", id),
        };
        let mut record: Record = [
            ("invoice_id", text(&k.0)),
            ("sk", text(&k.1)),
            ("target_kind", text(kind)),
            ("target_id", text(id)),
            ("created_at", text(rfc3339(link.created_at))),
            ("expires_at", text(rfc3339(link.expires_at))),
            ("link_ttl", super::number(link.record_ends().timestamp())),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect();
        if let Some(at) = link.revoked_at {
            record.insert("revoked_at".into(), text(rfc3339(at)));
        }
        inner.records.insert(k, record);
        Ok(true)
    }

    async fn get_link(&self, token: &LinkToken) -> Result<Option<PayLink>, StoreError> {
        Ok(self
            .lock()
            .records
            .get(&key(token))
            .and_then(|r| link_of(token, r)))
    }

    async fn revoke_link(&self, token: &LinkToken, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(r) = inner.records.get_mut(&key(token)) else {
            return Ok(false);
        };
        r.entry("revoked_at".into())
            .or_insert_with(|| RawValue::Text(rfc3339(at)));
        Ok(true)
    }
}
