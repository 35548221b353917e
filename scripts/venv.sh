#!/usr/bin/env bash
# Installs pinned Python-distributed tools into a project virtualenv.
#   scripts/venv.sh          scripts/requirements.txt -> ./.venv (moto, cargo-lambda, stripe)
#   scripts/venv.sh infra    scripts/requirements-infra.txt -> ./.venv-infra (SAM CLI, cfn-lint)
#   scripts/venv.sh checkov  scripts/requirements-checkov.txt -> ./.venv-checkov (checkov)
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
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "installed tools into $venv" >&2
