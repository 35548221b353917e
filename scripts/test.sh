#!/usr/bin/env bash
# All the tests: formatting, lints, unit and property tests, the end-to-end
# tests against the local AWS emulator (each starts its own moto server), the
# demo, the functions under `cargo lambda watch`, and the pay page in a real
# browser. `.ci/run` calls this.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
section() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

# A clean CI build gains nothing from incremental compilation, which would
# only fill the disk (gigabytes) and slow the build.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

section "Tools (pinned, into ./.venv)"
scripts/venv.sh

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings

section "cargo build + cargo test (unit, property, end-to-end against moto)"
# Every log line of every process the tests start (in-process runs and
# webhook calls, the CLI, the functions under cargo lambda watch) is also
# captured here; the last section searches it for personal data.
export DUNNING_LOG_CAPTURE="${CARGO_TARGET_DIR:-$root/target}/log-capture"
rm -rf "$DUNNING_LOG_CAPTURE"
cargo build --workspace
cargo test --workspace

section "Deployment template: cfn-lint, sam validate --lint and checkov (scripts/check-infra.sh)"
scripts/check-infra.sh

section "Webhook signatures against Stripe's own library (scripts/stripe_compat.py)"
.venv/bin/python scripts/stripe_compat.py "${CARGO_TARGET_DIR:-$root/target}/debug/dunning-admin"

section "Demo (scripts/demo.sh)"
scripts/demo.sh >"$root/target/demo.log" 2>&1 || { cat "$root/target/demo.log"; exit 1; }
grep -E '^sent: [1-9][0-9]* emails, [1-9][0-9]* SMS$' "$root/target/demo.log"
grep -E '^second pass over .*: 0 sent$' "$root/target/demo.log"
grep -E '^paid through the pay page: INV-1001 USD 1,250.00$' "$root/target/demo.log"
grep -E "^messages to INV-1001's customer on its due date: 0$" "$root/target/demo.log"
grep -E '"sync":"created"' "$root/target/demo.log"
grep -E 'instalment 1 of 2; balance USD 2,200.00' "$root/target/demo.log"
grep -E 'instalment 2 of 2; balance USD 1,100.00' "$root/target/demo.log"
grep -E '^Receivables by days overdue, as of 2026-11-26T18:00:00' "$root/target/demo.log"
grep -E '^Which reminder gets paid: reminders sent' "$root/target/demo.log"

section "The demo's HTML report in headless Chromium: its totals against the JSON, at 1280 and 390 px, printed on A4 (scripts/report_e2e.py)"
.venv/bin/python scripts/report_e2e.py "${CARGO_TARGET_DIR:-$root/target}/preview/report.html" "${CARGO_TARGET_DIR:-$root/target}/preview/report.json" \
  --screenshots "$root/target/report-screenshots"

section "The pay page in headless Chromium at 390 px, paid through localstripe (scripts/pay-page-e2e.sh)"
scripts/pay-page-e2e.sh

section "cargo lambda watch + invoke (scripts/lambda-local.sh)"
scripts/lambda-local.sh

section "No personal data in any captured log line (scripts/check-logs.py)"
.venv/bin/python scripts/check-logs.py --self-test
.venv/bin/python scripts/check-logs.py "$DUNNING_LOG_CAPTURE"

section "All tests passed"
