//! `sign-webhook` and `verify-webhook`: the webhook's signature scheme,
//! offline (no AWS configuration, only the secrets given).

use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;

fn read(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

fn secret_list(secrets: &str) -> Vec<Vec<u8>> {
    secrets
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect()
}

/// Prints a `Dunning-Signature` header for the body, signed with the first secret.
pub fn sign(file: &Path, secrets: &str) -> Result<()> {
    let body = read(file)?;
    let secrets = secret_list(secrets);
    let secret = secrets.first().context("WEBHOOK_SECRETS is empty")?;
    println!(
        "{}",
        dunning::webhook::signature::sign(secret, Utc::now().timestamp(), &body)
    );
    Ok(())
}

/// Checks a header over the body as the webhook does; an error when it fails.
pub fn verify(file: &Path, header: &str, secrets: &str, tolerance: i64) -> Result<()> {
    let body = read(file)?;
    dunning::webhook::signature::verify(
        Some(header),
        &body,
        &secret_list(secrets),
        Utc::now().timestamp(),
        tolerance,
    )?;
    println!("signature valid");
    Ok(())
}
