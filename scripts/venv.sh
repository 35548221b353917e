#!/usr/bin/env bash
# Installs pinned Python-distributed tools into a project virtualenv.
#   scripts/venv.sh          scripts/requirements.txt -> ./.venv (moto, cargo-lambda, stripe)
#   scripts/venv.sh infra    scripts/requirements-infra.txt -> ./.venv-infra (SAM CLI, cfn-lint)
#   scripts/venv.sh checkov  scripts/requirements-checkov.txt -> ./.venv-checkov (checkov)
# The default venv also holds, under .venv/stripe-api/<API version>/, the
# stripe-python release pinned to each older Stripe API version named in
# scripts/stripe-api-versions.txt, whose type definitions
# scripts/stripe_compat.py checks the fixtures of that version against.
# Idempotent: does nothing when the requirements have not changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
  "") venv="$root/.venv"; req="$root/scripts/requirements.txt" ;;
  infra) venv="$root/.venv-infra"; req="$root/scripts/requirements-infra.txt" ;;
  checkov) venv="$root/.venv-checkov"; req="$root/scripts/requirements-checkov.txt" ;;
  *) echo "usage: scripts/venv.sh [infra|checkov]" >&2; exit 2 ;;
esac
stamp="$venv/.requirements.sha256"
extra="$root/scripts/stripe-api-versions.txt"
want="$(cat "$req" $([ -z "${1:-}" ] && echo "$extra") | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
if [ -z "${1:-}" ]; then
  grep -v '^#' "$extra" | while read -r version pin; do
    [ -n "$version" ] || continue
    rm -rf "$venv/stripe-api/$version"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
      --target "$venv/stripe-api/$version" "$pin"
  done
fi
echo "$want" > "$stamp"
echo "installed tools into $venv" >&2
