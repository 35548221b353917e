#!/usr/bin/env bash
# Offline checks of the deployment template: cfn-lint, `sam validate --lint` and
# checkov. Every checkov finding is either fixed or suppressed in the template
# with a written reason (`Metadata: checkov: skip:`); this fails on any other,
# and on a suppression without a reason.
# (`sam build` through cargo-lambda is a separate command: scripts/sam-build.sh.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/venv.sh" infra
"$root/scripts/venv.sh" checkov
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
cd "$root/infra"
"$root/.venv-infra/bin/cfn-lint" template.yaml
"$root/.venv-infra/bin/sam" validate --lint -t template.yaml
# --skip-download: offline (no guideline or policy download from Prisma Cloud).
"$root/.venv-checkov/bin/checkov" --compact --skip-download \
  --framework cloudformation -f template.yaml -o json >"${TMPDIR:-/tmp}/checkov.$$.json" || true
"$root/.venv-checkov/bin/python" - "${TMPDIR:-/tmp}/checkov.$$.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
os_remove = __import__("os").remove
os_remove(sys.argv[1])
results = report["results"]
failed = results.get("failed_checks", [])
for check in failed:
    print(f"checkov: {check['check_id']} {check['check_name']} on {check['resource']}", file=sys.stderr)
unexplained = [s for s in results.get("skipped_checks", []) if len((s["check_result"].get("suppress_comment") or "").strip()) < 20]
for s in unexplained:
    print(f"checkov: {s['check_id']} on {s['resource']} is suppressed without a reason", file=sys.stderr)
summary = report["summary"]
print(f"checkov: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} suppressed with a reason")
sys.exit(1 if failed or unexplained or summary["passed"] == 0 else 0)
PY
