#!/usr/bin/env bash
# Retakes docs/temporal-ui.png: runs devstack, waits for the demo, and has headless Chromium
# (Debian packages chromium and chromium-driver) photograph the migration's page in the UI.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/imageflow-devstack ./devstack
log=$(mktemp)
/tmp/imageflow-devstack --dir /tmp/imageflow-screenshot >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q "^Serving" "$log" && break; sleep 1; done
url=$(grep -A1 "ok     migrate" "$log" | tail -1 | tr -d ' ')
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --window-size=1500,1000 --virtual-time-budget=15000 \
  --screenshot=docs/temporal-ui.png "$url"
