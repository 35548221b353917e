#!/usr/bin/env bash
# The demo: a reminder run over examples/invoices.csv against a local AWS
# emulator, printing who got what as the emulator recorded it.
#
#   scripts/demo.sh
#
# Installs moto (pinned) into ./.venv, builds the admin CLI, starts moto on a
# free port, creates the table, imports the invoices (two rows are malformed
# on purpose), runs the reminders as of Monday 23 November 2026 10:00 UTC,
# shows the messages, runs again to show nothing is sent twice, and stops moto.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

AS_OF="2026-11-23T10:00:00Z"
step() { printf '\n== %s\n' "$*"; }

step "Installing the local AWS emulator and building"
scripts/moto.sh install
# The whole workspace, as the tests build it, so the two share one set of artifacts.
cargo build --quiet --workspace
admin="${CARGO_TARGET_DIR:-$root/target}/debug/dunning-admin"

step "Starting moto"
eval "$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop' EXIT

export TABLE_NAME=invoices-demo
export SENDER_EMAIL=billing@acme.example
export BUSINESS_NAME="Acme Ltd"
export BUSINESS_TIMEZONE=Europe/London
export PAY_LINK_BASE_URL=https://pay.acme.example/i
export PAY_LINK_SECRET=demo-secret-not-for-production

step "Creating the table and the sender identity"
"$admin" create-table
"$admin" verify-sender

step "Importing examples/invoices.csv"
"$admin" import examples/invoices.csv

step "Reminder run as of $AS_OF"
"$admin" run --as-of "$AS_OF"

step "What the emulator sent"
.venv/bin/python scripts/show_sent.py "$AWS_ENDPOINT_URL"

step "The same run again: nothing new is sent"
"$admin" run --as-of "$AS_OF"

step "History of INV-1003"
"$admin" history INV-1003
