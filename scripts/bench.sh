#!/usr/bin/env bash
# Every figure in docs/benchmarks.md, in one command (about 25 minutes on 2
# cores, most of it loading 100,000-invoice tables into the emulator):
#   scripts/bench.sh            all of them
#   scripts/bench.sh cpu rate   only some: cpu, rate, reads, day, memory, coldstart, paypage, sms
# Release builds (the Lambda profile); each table benchmark starts its own moto.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/venv.sh
parts="$*"
want() { [ -z "$parts" ] || [[ " $parts " == *" $1 "* ]]; }
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB"
# moto answers a query over a 100,000-item index in seconds, not milliseconds.
export SDK_ATTEMPT_TIMEOUT_MS=60000
cargo build --release --quiet -p dunning-run -p dunning-e2e -p pay-page -p payment-webhook \
  --bin dunning-run --bin bench-reads --bin bench-pay-page --bin hello-lambda --bin pay-page --bin payment-webhook
if want cpu; then
  echo "== cpu: parse + decide + sign + render per invoice (criterion)"
  cargo bench --quiet -p dunning --bench decide_render 2>&1 | grep -E '^per_invoice|time:|thrpt:'
fi
if want rate; then
  echo "== rate: 1,000 messages at 20/s, then unlimited"
  cargo bench --quiet -p dunning --bench send_rate 2>&1 | grep '^{'
fi
if want reads; then
  echo "== reads: 100,000 invoices, the run vs a naive parallel Scan"
  target/release/bench-reads 100000
fi
if want day; then
  echo "== day: 24 hourly runs over 100,000 invoices, customers in 1 and in 24 time zones"
  target/release/bench-reads 100000 day
fi
if want memory; then
  echo "== memory: peak RSS of a run over 10,000 and 100,000 due invoices (dry run)"
  target/release/bench-reads 10000 all-due
  target/release/bench-reads 100000 all-due
  echo "== memory with the next-at index: its first run reschedules 100,000 due invoices (dry run)"
  target/release/bench-reads 100000 all-due-next-at
fi
if want coldstart; then
  echo "== cold start: process start to the first runtime API request"
  (
    set -a; . infra/local.env; set +a
    export ESCALATION_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:bench AWS_REGION=us-east-1
    export STRIPE_SECRET_KEY=sk_test_bench STRIPE_PUBLISHABLE_KEY=pk_test_bench
    .venv/bin/python scripts/cold_start.py --runs 20 \
      dunning-run=target/release/dunning-run pay-page=target/release/pay-page \
      payment-webhook=target/release/payment-webhook hello-world=target/release/hello-lambda
  )
fi
if want paypage; then
  echo "== pay page: a warm GET, 1,000 times, on moto and over the in-memory store; page weight"
  target/release/bench-pay-page 1000
fi
if want sms; then
  echo "== sms: the demo's due-today SMS per locale, signed links (before) and stored links (after)"
  .venv/bin/python scripts/sms_lengths.py
fi
