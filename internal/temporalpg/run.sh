#!/bin/sh
# Opt-in: the reliability suite's core cases with Temporal on PostgreSQL instead of SQLite.
# Needs Debian's postgresql package (apt-get install postgresql); `go test ./...` never runs this.
# It starts a throwaway PostgreSQL server in a temporary folder (as the postgres user when run as
# root, since PostgreSQL refuses root), points the tests at it through
# IMAGEFLOW_TEST_TEMPORAL_POSTGRES (each test gets a database of its own), and stops it after.
#
#   internal/temporalpg/run.sh            # the core cases
#   internal/temporalpg/run.sh -run X     # other go test flags instead
set -eu
cd "$(dirname "$0")/../.."
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
	echo "PostgreSQL is not installed: apt-get install postgresql" >&2
	exit 2
fi
port=${IMAGEFLOW_PG_PORT:-55432}
dir=$(mktemp -d /tmp/imageflow-pg-XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
stop() {
	as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT INT TERM
as_pg "$bin/initdb" -D "$dir/data" -A trust -U imageflow >"$dir/initdb.log" 2>&1
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
	-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off" start >/dev/null
echo "PostgreSQL $(basename "$(dirname "$bin")") on 127.0.0.1:$port ($dir)"
export IMAGEFLOW_TEST_TEMPORAL_POSTGRES="postgres://imageflow@127.0.0.1:$port/imageflow?sslmode=disable"
if [ $# -eq 0 ]; then
	set -- -run 'TestWorkerKilledMidCopy|TestTemporalRestartMidMigration|TestMigrationThroughCloudFaults|TestLongTasksWithKillsInEveryWait|TestReplica|TestNATSCluster' ./internal/reliability
fi
go test -count=1 -v "$@" 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go:' 
