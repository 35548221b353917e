#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the pay page's browser tests, from
# Debian's own packages (never a browser a tool downloads by itself), with a
# CJK font so that Chinese pages render as text, not boxes.
#   scripts/browser.sh install   install them if missing (needs root or sudo)
#   scripts/browser.sh check     exit 0 when both are installed
set -euo pipefail
packages=(chromium chromium-driver fonts-wqy-zenhei)
installed() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    && fc-list 2>/dev/null | grep -qi wqy
}
case "${1:-}" in
  check) installed ;;
  install)
    if installed; then exit 0; fi
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    installed || { echo "chromium, chromium-driver or the CJK font did not install" >&2; exit 1; }
    echo "installed ${packages[*]}" >&2
    ;;
  *) echo "usage: scripts/browser.sh install|check" >&2; exit 2 ;;
esac
