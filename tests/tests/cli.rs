//! `dunning-admin`'s offline commands run with nothing but what they use:
//! no AWS configuration, no table, no sender (`scripts/test.sh` builds the
//! binary before the tests run).

use std::path::PathBuf;
use std::process::{Command, Output};

fn admin() -> PathBuf {
    // target/debug/deps/cli-<hash> -> target/debug/dunning-admin
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug")
        .join("dunning-admin");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build --workspace` first",
        bin.display()
    );
    bin
}

/// Runs `dunning-admin` with exactly `env` (an emptied environment otherwise).
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(admin())
        .args(args)
        .env_clear()
        .envs(dunning_e2e::capture_env())
        .envs(env.iter().copied())
        .output()
        .expect("dunning-admin runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_webhook_body_is_signed_and_verified_with_only_its_secret() {
    let dir = std::env::temp_dir().join(format!("dunning-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body.json");
    std::fs::write(&body, br#"{"id":"p1","invoice_id":"INV-1","amount":"1.00","currency":"USD","paid_at":"2026-11-23T10:00:00Z"}"#).unwrap();
    let secret = [("WEBHOOK_SECRETS", "whsec_offline_0123456789")];
    let body = body.to_str().unwrap();
    let signed = run(&["sign-webhook", body], &secret);
    assert!(signed.status.success(), "{}", text(&signed.stderr));
    let header = text(&signed.stdout).trim().to_owned();
    assert!(
        header.starts_with("t=") && header.contains(",v1="),
        "{header}"
    );
    let ok = run(&["verify-webhook", body, "--header", &header], &secret);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let other = [("WEBHOOK_SECRETS", "whsec_another_0123456789")];
    let refused = run(&["verify-webhook", body, "--header", &header], &other);
    assert!(!refused.status.success(), "a wrong secret must be refused");
}

#[test]
fn preview_of_a_file_needs_only_the_message_settings() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/invoice.json");
    let env = [
        ("BUSINESS_NAME", "Acme Ltd"),
        ("BUSINESS_TIMEZONE", "UTC"),
        ("PAY_LINK_BASE_URL", "https://pay.acme.example"),
    ];
    let args = [
        "preview",
        "--file",
        file.to_str().unwrap(),
        "--as-of",
        "2026-11-26T15:00:00Z",
        "--channel",
        "email",
    ];
    let out = run(&args, &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("===== subject.txt =====") && shown.contains("Acme Ltd"),
        "{shown}"
    );
    // Each of those it does use is still required, by name.
    let missing = run(&args, &env[1..]);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("BUSINESS_NAME"),
        "{}",
        text(&missing.stderr)
    );
}
