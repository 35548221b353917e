#!/usr/bin/env bash
# `sam build` through cargo-lambda, exactly as docs/deployment.md shows, then a
# check that each function's artifact is an arm64 (aarch64) Linux `bootstrap`.
# Separate from the test command: it is a cold release build for aarch64 (about
# 11 minutes on 2 cores) and needs the Rust standard library for
# aarch64-unknown-linux-gnu (`rustup target add`, done here if missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/venv.sh
scripts/venv.sh infra
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  rustup target add aarch64-unknown-linux-gnu || {
    echo "sam-build: cannot install the aarch64-unknown-linux-gnu standard library (rustup needs static.rust-lang.org)" >&2
    exit 1
  }
fi
# cargo-lambda and its zig first on PATH, then the SAM CLI (docs/deployment.md).
export PATH="$root/.venv/bin:$root/.venv-infra/bin:$PATH" SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
cd infra
sam build --beta-features
for fn in DunningRunFunction PaymentWebhookFunction PayPageFunction MailEventsFunction NextAtFunction; do
  bin=".aws-sam/build/$fn/bootstrap"
  "$root/.venv/bin/python" - "$bin" <<'PY'
import os, struct, sys, zipfile, io
path = sys.argv[1]
with open(path, "rb") as f:
    head = f.read(20)
assert head[:4] == b"\x7fELF", f"{path}: not an ELF executable"
machine = struct.unpack("<H", head[18:20])[0]
assert machine == 183, f"{path}: e_machine {machine}, expected 183 (aarch64)"
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(path, "bootstrap")
print(f"{path}: aarch64 ELF, {os.path.getsize(path) / 2**20:.1f} MiB, {len(buf.getvalue()) / 2**20:.1f} MiB zipped")
PY
done
