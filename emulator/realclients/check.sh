#!/usr/bin/env bash
# Runs Debian's OpenStack clients (python3-openstackclient, python3-glanceclient,
# python3-swiftclient) against the emulator, for every operation of the quickstart and the API
# contract, and prints one line per check and a summary. Opt-in: it needs the Debian packages
# (installed with apt-get when missing, as root) and is not part of `go test ./...`.
#
#   emulator/realclients/check.sh            # from the repository root
#
# Exit status: 0 when every check passes, 1 otherwise. The last recorded result is in README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v openstack >/dev/null || ! command -v glance >/dev/null || ! command -v swift >/dev/null; then
	echo "installing the Debian OpenStack clients..."
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		python3-openstackclient python3-glanceclient python3-swiftclient >/dev/null || exit 1
fi

work=$(mktemp -d)
port=${REALCLIENTS_PORT:-18950}
export HOME=$work/home # glanceclient caches schemas under ~/.glanceclient: start clean
mkdir -p "$HOME"
go build -o "$work/emulator" ./emulator/cmd/emulator || exit 1
"$work/emulator" --addr "127.0.0.1:$port" --data-dir "$work/data" --task-duration 1s >"$work/emulator.log" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2.0/" >/dev/null && break; sleep 0.1; done

identity=http://127.0.0.1:$port/v2.0
dfw=http://127.0.0.1:$((port + 1))/v2
pass=0
failed=()

# check NAME COMMAND...: runs the command, records pass or fail, keeps its output in $out.
check() {
	local name=$1
	shift
	last_ok=0
	if out=$(timeout 120 "$@" 2>&1); then
		pass=$((pass + 1))
		last_ok=1
		printf 'ok    %s\n' "$name"
	else
		failed+=("$name")
		printf 'FAIL  %s\n%s\n' "$name" "$(printf '%s' "$out" | tail -5 | sed 's/^/      /')"
	fi
}

# expect NAME PATTERN COMMAND...: like check, and the output must match PATTERN.
expect() {
	local name=$1 pattern=$2
	shift 2
	check "$name" "$@"
	if [ "$last_ok" = 1 ] && ! grep -qE -- "$pattern" <<<"$out"; then
		pass=$((pass - 1))
		failed+=("$name")
		printf 'FAIL  %s: output does not match %s\n%s\n' "$name" "$pattern" "$(tail -5 <<<"$out" | sed 's/^/      /')"
	fi
}

tenant() { [ "$1" = demo ] && echo 100001 || echo 100002; }
as() { # as USER [REGION]: the openstack CLI's environment for an account (Identity v2.0, password)
	export OS_AUTH_URL=$identity OS_IDENTITY_API_VERSION=2 OS_USERNAME=$1 OS_PASSWORD=$1-password
	export OS_REGION_NAME=${2:-DFW} OS_TENANT_NAME=$(tenant "$1")
}
token() {
	curl -sf "$identity/tokens" -H 'Content-Type: application/json' \
		-d "{\"auth\":{\"RAX-KSKEY:apiKeyCredentials\":{\"username\":\"$1\",\"apiKey\":\"$1-api-key\"}}}" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["access"]["token"]["id"])'
}

as demo
expect "openstack image list" "demo-web-01" openstack image list
web=$(openstack image list --name demo-web-01 -f value -c ID)
expect "openstack image show" "demo-web-01" openstack image show "$web"
check "openstack image set --property (new)" openstack image set --property colour=blue "$web"
check "openstack image set --property (existing)" openstack image set --property colour=green "$web"
expect "openstack image show (property replaced)" "colour.*green" openstack image show -f json "$web"
check "openstack image unset --property" openstack image unset --property colour "$web"
check "openstack image set --tag" openstack image set --tag staging "$web"
check "openstack image unset --tag" openstack image unset --tag staging "$web"
check "openstack image add project" openstack image add project "$web" 100002
expect "openstack image member list" "100002.*pending" openstack image member list "$web"
as partner
check "openstack image set --accept (partner)" openstack image set --accept "$web"
as partner DFW
expect "openstack image list --shared (partner)" "demo-web-01" openstack image list --shared
check "openstack image set --reject (partner)" openstack image set --reject "$web"
as demo
expect "openstack image member list (rejected)" "rejected" openstack image member list "$web"
check "openstack image remove project" openstack image remove project "$web" 100002

tok=$(token demo)
glance=(glance --os-image-url "$dfw" --os-auth-token "$tok")
expect "glance image-list (--os-image-url ending in /v2, token)" "demo-web-01" "${glance[@]}" image-list
expect "glance image-show" "demo-web-01" "${glance[@]}" image-show "$web"
expect "glance image-update --property" "team.*ops" "${glance[@]}" image-update --property team=ops "$web"
check "glance image-update --remove-property" "${glance[@]}" image-update --remove-property team "$web"
check "glance image-tag-update" "${glance[@]}" image-tag-update "$web" blue
check "glance image-tag-delete" "${glance[@]}" image-tag-delete "$web" blue
check "glance member-create" "${glance[@]}" member-create "$web" 100002
expect "glance member-list" "100002" "${glance[@]}" member-list --image-id "$web"
ptok=$(token partner)
check "glance member-update accepted (partner)" glance --os-image-url "$dfw" --os-auth-token "$ptok" \
	member-update "$web" 100002 accepted
check "glance member-update rejected (partner)" glance --os-image-url "$dfw" --os-auth-token "$ptok" \
	member-update "$web" 100002 rejected
check "glance member-delete" "${glance[@]}" member-delete "$web" 100002
# Not checked: glance --os-auth-url without --os-image-url. glanceclient then joins the catalog's
# endpoint (which at Rackspace ends in /v2) with its own /v2/ paths and asks for /v2/v2/images;
# Rackspace's own instructions pass --os-image-url and a token, as above.

swift=(swift --auth-version 2 -A "$identity" -U demo -K demo-password --os-tenant-name 100001 --os-region-name DFW)
check "swift post (container)" "${swift[@]}" post exports
expect "glance task-create export" "pending|processing|success" "${glance[@]}" task-create --type export \
	--input "{\"image_uuid\":\"$web\",\"receiving_swift_container\":\"exports\"}"
export_task=$(grep -E '^\| id ' <<<"$out" | awk '{print $4}')
sleep 3
expect "glance task-show export" "success" "${glance[@]}" task-show "$export_task"
expect "glance task-list" "export" "${glance[@]}" task-list
expect "swift list (export segments)" "$web.vhd-00001" "${swift[@]}" list exports
head -c 3145728 /dev/urandom >"$work/blob"
check "swift upload (DLO, 1 MiB segments)" "${swift[@]}" upload --segment-size 1048576 dlo "$work/blob" --object-name blob
check "swift upload (SLO, 1 MiB segments)" "${swift[@]}" upload --use-slo --segment-size 1048576 slo "$work/blob" --object-name blob
check "swift download (DLO)" "${swift[@]}" download dlo blob -o "$work/dlo.out"
check "swift download (SLO)" "${swift[@]}" download slo blob -o "$work/slo.out"
check "downloads equal the upload" cmp "$work/blob" "$work/dlo.out"
check "downloads equal the upload (SLO)" cmp "$work/blob" "$work/slo.out"
expect "swift stat (SLO)" "X-Static-Large-Object: True" "${swift[@]}" stat slo blob
expect "openstack container list" "exports" openstack container list
expect "openstack object list" "$web.vhd" openstack object list exports
check "openstack object save" openstack object save --file "$work/export.vhd" exports "$web.vhd"
check "openstack object create" openstack object create --name copy.vhd exports "$work/export.vhd"
expect "glance task-create import" "pending|processing|success" "${glance[@]}" task-create --type import \
	--input '{"import_from":"exports/copy.vhd","import_from_format":"vhd","image_properties":{"name":"web-copy"}}'
import_task=$(grep -E '^\| id ' <<<"$out" | awk '{print $4}')
sleep 3
expect "glance task-show import" "image_id" "${glance[@]}" task-show "$import_task"
expect "openstack image list (imported)" "web-copy" openstack image list
copy=$(openstack image list --name web-copy -f value -c ID)
check "openstack image delete" openstack image delete "$copy"
check "swift delete (SLO with segments)" "${swift[@]}" delete slo blob

# Keystone v3: the same clients signing in the private-cloud way.
v3=http://127.0.0.1:$port/v3
unset OS_TENANT_NAME OS_IDENTITY_API_VERSION
export OS_AUTH_URL=$v3 OS_IDENTITY_API_VERSION=3 OS_USERNAME=demo OS_PASSWORD=demo-password OS_PROJECT_NAME=100001 \
	OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_REGION_NAME=DFW
expect "openstack image list (Keystone v3, password)" "demo-web-01" openstack image list
expect "openstack token issue (Keystone v3)" "100001" openstack token issue
expect "swift stat (Keystone v3)" "MossoCloudFS_100001" swift --auth-version 3 stat
unset OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_USER_DOMAIN_NAME OS_PROJECT_DOMAIN_NAME
expect "openstack image list (Keystone v3, application credential)" "demo-web-01" openstack \
	--os-auth-type v3applicationcredential --os-application-credential-id demo-appcred \
	--os-application-credential-secret demo-api-key image list
cat >"$work/clouds.yaml" <<YAML
clouds:
  emulator:
    auth:
      auth_url: $v3
      username: demo
      password: demo-password
      project_name: "100001"
      user_domain_name: Default
      project_domain_name: Default
    region_name: IAD
YAML
unset OS_AUTH_URL OS_REGION_NAME OS_IDENTITY_API_VERSION
expect "openstack --os-cloud (clouds.yaml)" "Ubuntu" env OS_CLIENT_CONFIG_FILE="$work/clouds.yaml" \
	openstack --os-cloud emulator image list

echo
echo "$pass passed, ${#failed[@]} failed"
for f in "${failed[@]}"; do echo "  failed: $f"; done
[ ${#failed[@]} -eq 0 ]
