#!/usr/bin/env bash
# Offline checks of the deployment template: cfn-lint and `sam validate --lint`.
# (`sam build` through cargo-lambda is a separate command: docs/deployment.md.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/venv.sh" infra
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
cd "$root/infra"
"$root/.venv-infra/bin/cfn-lint" template.yaml
"$root/.venv-infra/bin/sam" validate --lint -t template.yaml
