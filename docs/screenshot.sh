#!/usr/bin/env bash
# Retakes docs/temporal-ui.png: a migration's page in the Temporal UI while it runs, with its
# current step and ETA ("Current Details"). Runs devstack with cloud-like slow tasks (1 MiB/s),
# migrates demo-web-01 once (so the worker has measured its rates), then starts a migration of
# demo-db-01 (256 MiB) and photographs its page while it exports. Needs the Debian packages
# chromium and python3-websocket, and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/imageflow-devstack ./devstack
go build -o /tmp/imageflow-starter ./starter
log=$(mktemp)
/tmp/imageflow-devstack --dir /tmp/imageflow-screenshot --fresh --demo=false --task-bytes-per-second 1048576 \
  >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do grep -q "^Serving" "$log" && break; sleep 1; done
export IMAGEFLOW_CLOUD_IDENTITY_URL=http://localhost:8900/v2.0/ IMAGEFLOW_CLOUD_USERNAME=demo
export IMAGEFLOW_CLOUD_API_KEY=demo-api-key IMAGEFLOW_TEMPORAL_TASK_QUEUE=imageflow-demo
web=$(/tmp/imageflow-starter list --region DFW --name demo-web-01 --json | jq -r '.[0].id')
/tmp/imageflow-starter migrate --image "$web" --from DFW --to IAD --wait >/dev/null
db=$(/tmp/imageflow-starter list --region DFW --name demo-db-01 --json | jq -r '.[0].id')
/tmp/imageflow-starter migrate --image "$db" --from DFW --to IAD,LON >/tmp/imageflow-screenshot.json
id=$(jq -r .workflow_id /tmp/imageflow-screenshot.json)
run=$(jq -r .run_id /tmp/imageflow-screenshot.json)
sleep 10
/tmp/imageflow-starter status --workflow-id "$id"
docs/cdp-screenshot.py "http://localhost:8233/namespaces/default/workflows/$id/$run/user-metadata" \
  docs/temporal-ui.png 6
