#!/usr/bin/env bash
# The reliability suite in heavy mode (the sizes docs/reliability.md reports):
# 50 SIGKILLs over 500 due invoices, 5 concurrent runs over 300, a 20% fault
# rate over 400, 1,000 malformed items, 5,000 fuzz cases per property and
# 1,000 webhook deliveries, 2,000 money interleavings (tests/tests/money.rs). Quick mode of the same tests runs in scripts/test.sh.
# Prints each test's figures (one JSON line each) at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/venv.sh
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# One test at a time: each starts its own emulator, and the figures are
# clearer when tests do not compete for the 2 cores.
RELIABILITY=heavy cargo test -p dunning-e2e --test reliability --test money -- --nocapture --test-threads=1 2>&1 | tee "$out"
echo
echo "== figures (heavy mode)"
grep -o 'RELIABILITY {.*}' "$out" | sed 's/^RELIABILITY //'
