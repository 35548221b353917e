#!/usr/bin/env bash
# Runs the dunning-run function under `cargo lambda watch` against the local
# emulator and invokes it with the EventBridge fixture, exactly as the README's
# "Run the function locally" section shows. Checks that what the function
# reports as sent is what the emulator received. Used by scripts/test.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/venv.sh
export PATH="$root/.venv/bin:$PATH"
cargo build --quiet --workspace
admin="${CARGO_TARGET_DIR:-$root/target}/debug/dunning-admin"
work="$(mktemp -d)"
watch_pid=""
cleanup() {
  if [ -n "$watch_pid" ]; then kill -- "-$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; fi
  scripts/moto.sh stop
  rm -rf "$work"
}
trap cleanup EXIT

eval "$(scripts/moto.sh start)"
set -a; . infra/local.env; set +a
"$admin" create-table >/dev/null && "$admin" verify-sender >/dev/null
ESCALATION_TOPIC_ARN="$("$admin" create-topic)"
export ESCALATION_TOPIC_ARN
"$admin" import examples/invoices.csv 2>/dev/null

port="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Its own process group, so the watcher and the function it starts stop together.
# The function gets infra/local.env through --env-file, not through this shell: unset
# its settings here so a broken env file cannot pass unnoticed.
setsid env -u TABLE_NAME -u SENDER_EMAIL -u BUSINESS_NAME -u BUSINESS_TIMEZONE -u PAY_LINK_BASE_URL \
  -u PAY_LINK_SECRET -u WEBHOOK_SECRETS \
  cargo lambda watch -A 127.0.0.1 -P "$port" --env-file infra/local.env >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 600); do
  .venv/bin/python -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null && break
  kill -0 "$watch_pid" 2>/dev/null || { cat "$work/watch.log"; echo "cargo lambda watch exited" >&2; exit 1; }
  sleep 0.1
done

cargo lambda invoke dunning-run -A 127.0.0.1 -P "$port" \
  --data-file functions/dunning-run/events/scheduled-event.json >"$work/summary.json"
.venv/bin/python scripts/show_sent.py "$AWS_ENDPOINT_URL" >"$work/sent.txt"
.venv/bin/python - "$work/summary.json" "$work/sent.txt" "$work/watch.log" <<'PY'
import json, re, sys
summary = json.load(open(sys.argv[1]))
sent = sum(o["sent"] for c in summary["steps"].values() for o in c.values())
emails, sms = map(int, re.search(r"sent: (\d+) emails, (\d+) SMS", open(sys.argv[2]).read()).groups())
assert summary["as_of"] == "2026-11-23T14:00:00Z", summary["as_of"]
assert sent > 0 and sent == emails + sms, (sent, emails, sms, summary, open(sys.argv[3]).read()[-3000:])
print(f"cargo lambda invoke: the function read {summary['items_read']} invoices and sent {sent} messages; the emulator received {emails} emails and {sms} SMS")
PY

# A signed payment to the webhook's local function URL: INV-1002 is paid in full.
printf '%s' '{"id":"pay_local_1","invoice_id":"INV-1002","amount":"480.00","currency":"EUR","paid_at":"2026-11-23T15:00:00Z"}' >"$work/payment.json"
curl -sS -X POST "http://127.0.0.1:$port/lambda-url/payment-webhook/" \
  -H "Dunning-Signature: $("$admin" sign-webhook "$work/payment.json")" \
  -H 'Content-Type: application/json' --data-binary @"$work/payment.json" >"$work/answer.json"
"$admin" history INV-1002 >"$work/history.txt"
.venv/bin/python - "$work/answer.json" "$work/history.txt" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
assert answer.get("result") == "applied" and answer.get("status") == "paid", answer
history = open(sys.argv[2]).read()
assert history.startswith("invoice INV-1002 paid 480.00 EUR"), history
assert "payment#pay_local_1" in history, history
print("webhook function URL: payment applied, INV-1002 is paid:", history.splitlines()[0])
PY
