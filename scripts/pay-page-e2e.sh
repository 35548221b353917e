#!/usr/bin/env bash
# The pay page end to end, as a customer meets it: moto (AWS), localstripe
# (Stripe) and the pay page and webhook functions under `cargo lambda watch`,
# all on free loopback ports and stopped by their own PIDs; a reminder run
# sends SMS to moto; headless Chromium at a phone's width opens the links and
# pays (scripts/pay_page_e2e.py). Screenshots go to
# target/pay-page-screenshots/. Used by scripts/test.sh.
#
#   scripts/pay-page-e2e.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/venv.sh
scripts/browser.sh install
# Selenium drives the Debian chromedriver given to it; it must never fetch one.
export SE_OFFLINE=true SE_AVOID_STATS=true
export PATH="$root/.venv/bin:$PATH"
cargo build --quiet --workspace
target="${CARGO_TARGET_DIR:-$root/target}"
admin="$target/debug/dunning-admin"
work="$(mktemp -d)"
. scripts/lib/pay-stack.sh
cleanup() {
  pay_stack_stop
  scripts/moto.sh stop
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(scripts/moto.sh start)"
set -a; . infra/local.env; set +a
"$admin" create-table >/dev/null && "$admin" verify-sender >/dev/null
ESCALATION_TOPIC_ARN="$("$admin" create-topic)"
export ESCALATION_TOPIC_ARN
pay_stack_start "$work"
# The run's links point at the local page.
export PAY_LINK_BASE_URL="$PAY_PAGE_URL"

mkdir -p "$target/pay-page-screenshots"
.venv/bin/python scripts/pay_page_e2e.py \
  --admin "$admin" --moto "$AWS_ENDPOINT_URL" --base "$PAY_LINK_BASE_URL" \
  --stripe "$STRIPE_BASE" --screenshots "$target/pay-page-screenshots" \
  || { echo "--- cargo lambda watch"; tail -n 80 "$work/watch.log"; echo "--- localstripe"; tail -n 40 "$work/localstripe.log"; exit 1; }
