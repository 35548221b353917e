#!/usr/bin/env bash
# The local AWS emulator (moto server) for the demo and manual runs.
#   scripts/moto.sh install        install moto (pinned) into ./.venv
#   scripts/moto.sh start [PORT]   start on 127.0.0.1 (a free port by default);
#                                  prints `export AWS_...` lines for your shell
#   scripts/moto.sh stop           stop the server this script started (by its PID)
# The e2e tests start their own servers; they do not use this script's.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/.venv/moto"
python="$root/.venv/bin/python"

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
  install)
    "$root/scripts/venv.sh"
    ;;
  start)
    "$root/scripts/venv.sh"
    mkdir -p "$state"
    if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      echo "moto is already running (pid $(cat "$state/pid")); run scripts/moto.sh stop first" >&2
      exit 1
    fi
    port="${2:-$(free_port)}"
    "$python" "$root/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$state/server.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state/pid"
    echo "$port" >"$state/port"
    for _ in $(seq 1 200); do
      if "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
          "http://127.0.0.1:$port/moto-api/data.json" 2>/dev/null; then
        echo "moto listening on http://127.0.0.1:$port (pid $pid)" >&2
        cat <<ENV
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
ENV
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        echo "moto exited; see $state/server.log" >&2
        exit 1
      fi
      sleep 0.1
    done
    echo "moto did not answer on port $port; see $state/server.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    if [ -f "$state/pid" ]; then
      pid="$(cat "$state/pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$state/pid" "$state/port"
      echo "moto stopped (pid $pid)" >&2
    fi
    ;;
  *)
    echo "usage: scripts/moto.sh install | start [PORT] | stop" >&2
    exit 2
    ;;
esac
