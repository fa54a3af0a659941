#!/usr/bin/env bash
# Opt-in: imageflow against a real OpenStack (Debian's Keystone 22 and Glance 25, Zed, on
# SQLite, started by ../shared/openstack-rig.sh as root: ~3 min the first time, ~40 s after).
# Migrates an image of project alpha from RegionOne to RegionTwo and shares it with project beta,
# whose worker accepts it by event; copies, resumes, lineages and cleans up on the rig's two
# Swift 2.30 clusters (OS_RIG_SWIFT=1, ~80 s to start warm). Not part of `go test ./...`; the last result is in README.md.
#
#   internal/realopenstack/run.sh          # from the repository root
set -euo pipefail
cd "$(dirname "$0")/../.."
rig=${OPENSTACK_RIG:-../shared/openstack-rig.sh}
[ -f "$rig" ] || { echo "no OpenStack rig at $rig (set OPENSTACK_RIG)"; exit 2; }
# shellcheck source=/dev/null
. "$rig"
# RegionTwo's Glance also offers glance-download (Zed and later: it pulls an image from RegionOne
# itself), which the rig leaves off: wrap its Glance configuration to add it.
eval "$(declare -f _osrig_glance_conf | sed '1s/_osrig_glance_conf/_osrig_glance_conf_rig/')"
_osrig_glance_conf() {
  if [ "$1" = RegionTwo ]; then
    _osrig_glance_conf_rig "$1" "$2" "$3" "$4" "$5,glance-download"
  else
    _osrig_glance_conf_rig "$@"
  fi
}
# Swift in both regions (Cloud Files is Swift): the copy's tests in swift_test.go need it.
OS_RIG_SWIFT=1 start_openstack
trap stop_openstack EXIT
go test -tags realopenstack -count=1 -v ./internal/realopenstack
