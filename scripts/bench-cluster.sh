#!/usr/bin/env bash
# Runs the cluster phase of `browserd bench` (issue 18) on a private PostgreSQL: initdb
# and pg_ctl from the postgresql package (apt-get install -y postgresql; scripts/deps.sh
# does), in a temp dir, on a free loopback port, as the postgres user when run as root,
# with fsync off (durability is not what is measured). The cluster is stopped and
# removed on exit.
#
# Usage: scripts/bench-cluster.sh [more browserd bench flags]
#   e.g. scripts/bench-cluster.sh --write=false
#        scripts/bench-cluster.sh --quick
# The bench's flags --phases cluster and --cluster-database are set here. Without
# --write=false the bench writes docs/PERFORMANCE.md's generated section with only the
# cluster rows: copy them where they belong instead.
set -euo pipefail

bin_dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [[ -z "$bin_dir" || ! -x "$bin_dir/initdb" ]]; then
	echo "bench-cluster: PostgreSQL is not installed (apt-get install -y postgresql)" >&2
	exit 1
fi
dir=$(mktemp -d /tmp/browserd-bench-pg-XXXXXX)
as=()
if [[ $(id -u) -eq 0 ]]; then
	chown postgres: "$dir"
	as=(runuser -u postgres --)
fi
pg() { "${as[@]}" env LC_ALL=C "$bin_dir/$1" "${@:2}"; }
cleanup() {
	pg pg_ctl -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
echo "$password" >"$dir/pwfile"
[[ ${#as[@]} -eq 0 ]] || chown postgres: "$dir/pwfile"
pg initdb -D "$dir/data" -U browserd --pwfile "$dir/pwfile" --auth scram-sha-256 -E UTF8 --locale C --no-sync >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
pg pg_ctl -D "$dir/data" -l "$dir/log" -w -t 60 start >/dev/null
PGPASSWORD=$password "$bin_dir/createdb" -h 127.0.0.1 -p "$port" -U browserd bench

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BROWSERD:-}
if [[ -z "$bin" ]]; then # this checkout's, built now (BROWSERD=path to use another)
	command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
	(cd "$root" && go build -o bin/browserd ./cmd/browserd)
	bin=$root/bin/browserd
fi
"$bin" bench --phases cluster --cluster-database "postgres://browserd:$password@127.0.0.1:$port/bench?sslmode=disable" "$@"
