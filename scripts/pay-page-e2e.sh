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
export PATH="$root/.venv/bin:$PATH"
cargo build --quiet --workspace
target="${CARGO_TARGET_DIR:-$root/target}"
admin="$target/debug/dunning-admin"
work="$(mktemp -d)"
watch_pid=""
stripe_pid=""
cleanup() {
  if [ -n "$watch_pid" ]; then kill -- "-$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; fi
  if [ -n "$stripe_pid" ]; then kill "$stripe_pid" 2>/dev/null || true; wait "$stripe_pid" 2>/dev/null || true; fi
  scripts/moto.sh stop
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 600); do
    .venv/bin/python -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; echo "$4 exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "$4 did not start" >&2; exit 1
}

eval "$(scripts/moto.sh start)"
watch_port="$(free_port)"
stripe_port="$(free_port)"
webhook_secret="whsec_local_pay_page_0123456789"

.venv/bin/python scripts/localstripe_server.py "$stripe_port" >"$work/localstripe.log" 2>&1 &
stripe_pid=$!
wait_port "$stripe_port" "$stripe_pid" "$work/localstripe.log" localstripe

# The local settings, with the pay page at its local Function URL and Stripe at localstripe.
{
  grep -v '^PAY_LINK_BASE_URL=' infra/local.env
  echo "PAY_LINK_BASE_URL=http://127.0.0.1:$watch_port/lambda-url/pay-page"
  echo "STRIPE_SECRET_KEY=sk_test_localstripe"
  echo "STRIPE_PUBLISHABLE_KEY=pk_test_localstripe"
  echo "STRIPE_API_BASE=http://127.0.0.1:$stripe_port"
  echo "STRIPE_JS_URL=http://127.0.0.1:$stripe_port/js.stripe.com/v3/"
  echo "STRIPE_WEBHOOK_SECRETS=$webhook_secret"
} >"$work/e2e.env"
set -a; . "$work/e2e.env"; set +a
"$admin" create-table >/dev/null && "$admin" verify-sender >/dev/null
ESCALATION_TOPIC_ARN="$("$admin" create-topic)"
export ESCALATION_TOPIC_ARN
echo "ESCALATION_TOPIC_ARN=$ESCALATION_TOPIC_ARN" >>"$work/e2e.env"

setsid cargo lambda watch -A 127.0.0.1 -P "$watch_port" --env-file "$work/e2e.env" >"$work/watch.log" 2>&1 &
watch_pid=$!
wait_port "$watch_port" "$watch_pid" "$work/watch.log" "cargo lambda watch"

# localstripe delivers payment_intent.succeeded, signed with Stripe's scheme, to the webhook.
curl -sSf -X POST "http://127.0.0.1:$stripe_port/_config/webhooks/pay_page_e2e" \
  -H 'Content-Type: application/json' \
  --data "{\"url\": \"http://127.0.0.1:$watch_port/lambda-url/payment-webhook/\", \"secret\": \"$webhook_secret\", \"events\": [\"payment_intent.succeeded\"]}" >/dev/null

mkdir -p "$target/pay-page-screenshots"
.venv/bin/python scripts/pay_page_e2e.py \
  --admin "$admin" --moto "$AWS_ENDPOINT_URL" --base "$PAY_LINK_BASE_URL" \
  --stripe "http://127.0.0.1:$stripe_port" --screenshots "$target/pay-page-screenshots" \
  || { echo "--- cargo lambda watch"; tail -n 80 "$work/watch.log"; echo "--- localstripe"; tail -n 40 "$work/localstripe.log"; exit 1; }
