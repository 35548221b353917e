# Sourced by scripts/demo.sh and scripts/pay-page-e2e.sh: localstripe and the
# functions under `cargo lambda watch` on free loopback ports, each stopped by
# its own PID (pay_stack_stop). Needs moto started and infra/local.env's
# settings exported; sets PAY_PAGE_URL, STRIPE_BASE and PAY_STACK_ENV (the
# env file the functions were given).

# cargo-lambda is installed into the project virtualenv (scripts/venv.sh).
export PATH="$PWD/.venv/bin:$PATH"

# The Stripe endpoint secret the payment webhook is given (localstripe signs with it).
PAY_STACK_STRIPE_SECRET="whsec_local_pay_page_0123456789"
export PAY_STACK_STRIPE_SECRET

pay_stack_free_port() {
  .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pay_stack_wait() { # port pid log name
  for _ in $(seq 1 600); do
    .venv/bin/python -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; echo "$4 exited" >&2; return 1; }
    sleep 0.1
  done
  echo "$4 did not start" >&2
  return 1
}

# pay_stack_start WORKDIR: localstripe, then the functions with the pay page at
# its local Function URL and Stripe at localstripe; localstripe's webhooks go to
# the payment webhook, signed with a Stripe endpoint secret.
pay_stack_start() {
  local work="$1" watch_port stripe_port secret="$PAY_STACK_STRIPE_SECRET"
  watch_port="$(pay_stack_free_port)"
  stripe_port="$(pay_stack_free_port)"
  .venv/bin/python scripts/localstripe_server.py "$stripe_port" >"$work/localstripe.log" 2>&1 &
  PAY_STACK_STRIPE_PID=$!
  pay_stack_wait "$stripe_port" "$PAY_STACK_STRIPE_PID" "$work/localstripe.log" localstripe
  STRIPE_BASE="http://127.0.0.1:$stripe_port"
  PAY_PAGE_URL="http://127.0.0.1:$watch_port/lambda-url/pay-page"
  PAY_STACK_ENV="$work/functions.env"
  {
    grep -v -e '^PAY_LINK_BASE_URL=' -e '^ESCALATION_TOPIC_ARN=' infra/local.env
    echo "PAY_LINK_BASE_URL=$PAY_PAGE_URL"
    echo "STRIPE_SECRET_KEY=sk_test_localstripe"
    echo "STRIPE_PUBLISHABLE_KEY=pk_test_localstripe"
    echo "STRIPE_API_BASE=$STRIPE_BASE"
    echo "STRIPE_JS_URL=$STRIPE_BASE/js.stripe.com/v3/"
    echo "STRIPE_WEBHOOK_SECRETS=$secret"
    echo "ESCALATION_TOPIC_ARN=${ESCALATION_TOPIC_ARN:-}"
    echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL"
  } >"$PAY_STACK_ENV"
  setsid cargo lambda watch -A 127.0.0.1 -P "$watch_port" --env-file "$PAY_STACK_ENV" >"$work/watch.log" 2>&1 &
  PAY_STACK_WATCH_PID=$!
  pay_stack_wait "$watch_port" "$PAY_STACK_WATCH_PID" "$work/watch.log" "cargo lambda watch"
  curl -sSf -X POST "$STRIPE_BASE/_config/webhooks/local" -H 'Content-Type: application/json' \
    --data "{\"url\": \"http://127.0.0.1:$watch_port/lambda-url/payment-webhook/\", \"secret\": \"$secret\", \"events\": [\"payment_intent.succeeded\"]}" >/dev/null
  export PAY_PAGE_URL STRIPE_BASE PAY_STACK_ENV
}

pay_stack_stop() {
  if [ -n "${PAY_STACK_WATCH_PID:-}" ]; then kill -- "-$PAY_STACK_WATCH_PID" 2>/dev/null || true; wait "$PAY_STACK_WATCH_PID" 2>/dev/null || true; fi
  if [ -n "${PAY_STACK_STRIPE_PID:-}" ]; then kill "$PAY_STACK_STRIPE_PID" 2>/dev/null || true; wait "$PAY_STACK_STRIPE_PID" 2>/dev/null || true; fi
  PAY_STACK_WATCH_PID=""
  PAY_STACK_STRIPE_PID=""
}
