#!/usr/bin/env bash
# The demo: a day of hourly reminder runs over examples/invoices.csv against a
# local AWS emulator, printing who got what as the emulator recorded it.
#
#   scripts/demo.sh
#
# Installs moto (pinned) into ./.venv, builds the workspace, starts moto on a
# free port, creates the table and the escalation topic, imports the invoices
# (two rows are malformed on purpose), runs the reminders every hour of Monday
# 23 November 2026 (each customer is reached in their own morning), shows the
# messages, runs the same day again to show nothing is sent twice, pays one
# invoice through the pay page (localstripe for Stripe), syncs a Stripe invoice
# in from its signed event (no import), shows the paid invoice gets nothing on
# its due date, puts an invoice on a payment plan and previews its
# instalments' reminders, records a bank transfer, ends with the report for
# 26 November (in the terminal, and as HTML and JSON next to the previews),
# and stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

DAY="2026-11-23"
step() { printf '\n== %s\n' "$*"; }

step "Installing the local AWS emulator and building"
scripts/moto.sh install
# The whole workspace, as the tests build it, so the two share one set of artifacts.
cargo build --quiet --workspace
admin="${CARGO_TARGET_DIR:-$root/target}/debug/dunning-admin"

step "Starting moto"
eval "$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop' EXIT

# The local settings (infra/local.env, shared with `cargo lambda watch`).
set -a; . infra/local.env; set +a

step "Creating the table, the sender identity and the escalation topic"
"$admin" create-table
"$admin" verify-sender
ESCALATION_TOPIC_ARN="$("$admin" create-topic)"
export ESCALATION_TOPIC_ARN
echo "escalation topic $ESCALATION_TOPIC_ARN"

step "Importing examples/invoices.csv"
"$admin" import examples/invoices.csv

step "Audit: invoice items a run could not use (a parallel Scan; the two bad rows were refused at import)"
"$admin" audit

step "Hourly runs through $DAY (times in UTC; each customer is reached 09:00-17:00 their time)"
for hour in $(seq -w 0 23); do
  "$admin" run --as-of "${DAY}T${hour}:00:00Z" --brief | grep -v ': sent 0' || true
done

step "What the emulator sent"
.venv/bin/python scripts/show_sent.py "$AWS_ENDPOINT_URL"

step "The same day again: nothing is sent twice"
again=0
for hour in $(seq -w 0 23); do
  n="$("$admin" run --as-of "${DAY}T${hour}:00:00Z" --json | .venv/bin/python -c \
    'import json, sys; s = json.load(sys.stdin); print(sum(o["sent"] for c in s["steps"].values() for o in c.values()))')"
  again=$((again + n))
done
echo "second pass over $DAY: $again sent"

step "Ana Lima pays INV-1001 through the pay page (Stripe is localstripe; the page and the webhook run under cargo lambda watch)"
# The messages say https://pay.acme.example/<token> (a custom domain in a
# deployment); locally the same token opens the page at its Function URL.
work="$(mktemp -d)"
. scripts/lib/pay-stack.sh
trap 'pay_stack_stop; scripts/moto.sh stop; rm -rf "$work"' EXIT
pay_stack_start "$work"
.venv/bin/python scripts/demo_pay.py "$AWS_ENDPOINT_URL" "$PAY_PAGE_URL" "$STRIPE_BASE" ana.lima@example.com
"$admin" history INV-1001 >"$work/history.txt" && head -n 1 "$work/history.txt"

step "A Stripe invoice synced in, with no import: its invoice.finalized event (signed as Stripe signs) creates the invoice"
event=shared/tests/fixtures/stripe/2026-10-28.clover/invoice.finalized.sync.json
signature="$("$admin" sign-webhook "$event" --secrets "$PAY_STACK_STRIPE_SECRET")"
curl -sS -X POST "${PAY_PAGE_URL%/pay-page}/payment-webhook/" -H "Stripe-Signature: $signature" \
  -H 'Content-Type: application/json' --data-binary @"$event"; echo
"$admin" history in_1QCSync000000002001 | head -n 2
pay_stack_stop

step "26 November, INV-1001's due date: every due invoice is reminded but INV-1001, which is paid"
before="$(.venv/bin/python scripts/show_sent.py "$AWS_ENDPOINT_URL" | grep -c -e ana.lima@example.com -e +15555550101 || true)"
"$admin" run --as-of 2026-11-26T15:00:00Z --brief | grep -v ': sent 0' || true
after="$(.venv/bin/python scripts/show_sent.py "$AWS_ENDPOINT_URL" | grep -c -e ana.lima@example.com -e +15555550101 || true)"
echo "messages to INV-1001's customer on its due date: $((after - before))"

step "A payment plan: INV-1009 (USD 2,200.00, due 15 December) in two instalments"
"$admin" plan INV-1009 --instalment 2026-12-15:1100.00 --instalment 2027-01-15:1100.00 --by demo --reason "asked to split it"
echo "its pre-due reminder on 12 December:"
preview_text="$("$admin" preview --invoice-id INV-1009 --as-of 2026-12-12T16:00:00Z --channel email)"
grep -m1 'instalment 1 of 2' <<<"$preview_text"
echo "and once the first is paid, the second's, on 12 January:"
"$admin" record-payment INV-1009 --amount 1100.00 --currency USD --reference DEMO-PLAN-1 --paid-at 2026-12-14T10:00:00Z
preview_text="$("$admin" preview --invoice-id INV-1009 --as-of 2027-01-12T16:00:00Z --channel email)"
grep -m1 'instalment 2 of 2' <<<"$preview_text"

step "History of INV-1003"
"$admin" history INV-1003

step "Preview: the final notice INV-1003 would get, as SMS in Traditional Chinese"
"$admin" preview --invoice-id INV-1003 --step final_notice --locale zh-Hant --channel sms --as-of "${DAY}T10:00:00Z"

step "Preview: examples/invoice.json (the README's contract example), the email due on 26 November"
"$admin" preview --file examples/invoice.json --as-of 2026-11-26T15:00:00Z --channel email --out "${CARGO_TARGET_DIR:-$root/target}/preview"
head -n 3 "${CARGO_TARGET_DIR:-$root/target}/preview/subject.txt" "${CARGO_TARGET_DIR:-$root/target}/preview/body.txt"

step "Emeka Obi pays INV-1005 by bank transfer on 24 November, the day after its due-date reminder"
"$admin" record-payment INV-1005 --amount 125.500 --currency KWD --reference DEMO-BANK-1 --paid-at 2026-11-24T09:30:00Z

step "The report for 26 November: receivables by age, DSO and CEI, which reminder gets paid, what is in flight"
preview="${CARGO_TARGET_DIR:-$root/target}/preview"
"$admin" report --as-of 2026-11-26T18:00:00Z
"$admin" report --as-of 2026-11-26T18:00:00Z --format html --out "$preview/report.html"
"$admin" report --as-of 2026-11-26T18:00:00Z --format json --out "$preview/report.json"
echo "the report as one HTML file: $preview/report.html"

