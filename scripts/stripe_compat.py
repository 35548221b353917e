"""Stripe's own client library and ours agree on webhook signatures and on
what the events we take look like.

Signatures: Stripe's library (stripe-python) must accept the headers
`dunning-admin sign-webhook` produces, and `dunning-admin verify-webhook` must
accept the headers Stripe's library produces and refuse tampered ones.

Shapes: every field of every fixture in shared/tests/fixtures/stripe/<API
version>/ (the event, its object, and nested objects the library types) must
be a field the type definitions of the stripe-python release pinned to that
API version declare, and each fixture must say that version. The older
releases are installed by scripts/venv.sh (scripts/stripe-api-versions.txt);
the current version is checked against the pinned stripe in requirements.txt.

Usage: python scripts/stripe_compat.py path/to/dunning-admin
       python scripts/stripe_compat.py --fields DIR   (one version, in the
       interpreter whose stripe is pinned to it)
"""

import os
import pathlib
import subprocess
import sys
import tempfile

import stripe

SECRET = "whsec_compat_check_0123456789"
ROOT = pathlib.Path(__file__).resolve().parent.parent


FIXTURES = ROOT / "shared/tests/fixtures/stripe"


def bodies():
    for path in sorted(FIXTURES.glob("*/*.json")):
        yield f"{path.parent.name}/{path.name}", path.read_text(encoding="utf-8")
    yield "unicode", '{"id":"evt_ü","invoice_id":"INV-€-1","amount":"1.00","currency":"EUR","paid_at":"2026-11-24T10:00:00Z","note":"发票"}'
    yield "empty object", "{}"


# The library class of each object type a fixture holds.
CLASSES = {
    "event": "Event",
    "invoice": "Invoice",
    "invoice_payment": "InvoicePayment",
    "payment_intent": "PaymentIntent",
    "checkout.session": "checkout.Session",
    "charge": "Charge",
    "refund": "Refund",
    "dispute": "Dispute",
    "customer": "Customer",
}


def check_fields(where, value, cls, problems):
    """Every key of `value` is declared by `cls`; nested objects the library
    types as inner classes (status_transitions -> StatusTransitions) are
    checked the same way."""
    declared = getattr(cls, "__annotations__", {})
    for key, inner in value.items():
        if key not in declared:
            problems.append(f"{where}.{key}: not a field of {cls.__qualname__}")
            continue
        nested = getattr(cls, "".join(part.capitalize() for part in key.split("_")), None)
        if isinstance(inner, dict) and isinstance(nested, type):
            check_fields(f"{where}.{key}", inner, nested, problems)


def fields(directory):
    import json
    import stripe

    problems = []
    checked = 0
    version = pathlib.Path(directory).name
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if body.get("api_version") != version:
            problems.append(f"{path.name}: api_version {body.get('api_version')!r}, not {version}")
        check_fields(path.name, {k: v for k, v in body.items() if k != "data"}, stripe.Event, problems)
        obj = body["data"]["object"]
        cls = stripe
        try:
            for part in CLASSES[obj["object"]].split("."):
                cls = getattr(cls, part)
        except AttributeError:
            problems.append(f"{path.name}: stripe-python {stripe.VERSION} has no {CLASSES[obj['object']]}")
            continue
        check_fields(f"{path.name}:data.object", obj, cls, problems)
        checked += 1
    if problems:
        raise SystemExit("\n".join(problems))
    print(f"{checked} fixtures of API {version} match stripe-python {stripe.VERSION} (pinned to {stripe.api_version})")


def check_versions():
    older = {}
    for line in (ROOT / "scripts/stripe-api-versions.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            version, _pin = line.split()
            older[version] = ROOT / ".venv/stripe-api" / version
    dirs = sorted(p for p in FIXTURES.iterdir() if p.is_dir())
    assert len(dirs) >= 3, f"fixtures for at least three API versions, found {[d.name for d in dirs]}"
    for d in dirs:
        env = dict(os.environ)
        if d.name in older:
            env["PYTHONPATH"] = str(older[d.name])
        subprocess.run([sys.executable, __file__, "--fields", str(d)], env=env, check=True)


def main():
    if sys.argv[1] == "--fields":
        fields(sys.argv[2])
        return
    check_versions()
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
