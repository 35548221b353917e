"""Stripe's own client library and ours agree on webhook signatures.

Stripe's library (stripe-python) must accept the headers `dunning-admin
sign-webhook` produces, and `dunning-admin verify-webhook` must accept the
headers Stripe's library produces and refuse tampered ones.

Usage: python scripts/stripe_compat.py path/to/dunning-admin
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import stripe

SECRET = "whsec_compat_check_0123456789"
ROOT = pathlib.Path(__file__).resolve().parent.parent


def bodies():
    for path in sorted((ROOT / "shared/tests/fixtures/stripe").glob("*.json")):
        yield path.name, path.read_text(encoding="utf-8")
    yield "unicode", '{"id":"evt_ü","invoice_id":"INV-€-1","amount":"1.00","currency":"EUR","paid_at":"2026-11-24T10:00:00Z","note":"发票"}'
    yield "empty object", "{}"


def main():
    admin = sys.argv[1]
    env = dict(os.environ, WEBHOOK_SECRETS=SECRET)
    checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in bodies():
            path = pathlib.Path(tmp, "body.json")
            path.write_bytes(body.encode("utf-8"))
            # Ours -> Stripe's library.
            ours = subprocess.run([admin, "sign-webhook", str(path)], env=env, check=True, capture_output=True, text=True).stdout.strip()
            stripe.WebhookSignature.verify_header(body, ours, SECRET, tolerance=300)
            # Stripe's library -> ours.
            theirs = stripe.WebhookSignature.generate_signature_header(body, SECRET)
            ok = subprocess.run([admin, "verify-webhook", str(path), "--header", theirs], env=env, capture_output=True)
            assert ok.returncode == 0, f"{name}: our verifier refused Stripe's header: {ok.stderr!r}"
            # A tampered body is refused by both.
            path.write_bytes((body + " ").encode("utf-8"))
            bad = subprocess.run([admin, "verify-webhook", str(path), "--header", theirs], env=env, capture_output=True)
            assert bad.returncode != 0, f"{name}: a tampered body passed"
            try:
                stripe.WebhookSignature.verify_header(body + " ", ours, SECRET, tolerance=300)
                raise AssertionError(f"{name}: Stripe's library accepted a tampered body")
            except stripe.SignatureVerificationError:
                pass
            checked += 1
    print(f"stripe-python {stripe.VERSION} and dunning agree on {checked} bodies (both ways, tampering refused)")


if __name__ == "__main__":
    main()
