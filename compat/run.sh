#!/usr/bin/env bash
# Runs the compatibility suite: the official Browserbase Node SDK, playwright-core and
# puppeteer-core (real npm packages, pinned in package.json) against a freshly built
# browserd server with a throw-away data directory.
#
#   bash compat/run.sh                 # whole suite
#   bash compat/run.sh tests/errors.test.mjs   # one file (paths relative to compat/)
#
# Environment: CHROME_PATH (default /usr/bin/chromium), KEEP_DATA_DIR=1 keeps the temp dir.
# COMPAT_PEERS=N (with BROWSERD_DATABASE=postgres://… and BROWSERD_BLOB_STORE) runs a
# cluster: the suite talks to the first node only, which holds one session of another
# project at its capacity of 1, so that every session of the suite runs its browser on
# one of the N peers (issue 18: "pointed at one node … while the browsers live on the
# others").
set -Eeuo pipefail

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT_DIR="$(cd "$COMPAT_DIR/.." && pwd)"
BIN="$ROOT_DIR/bin/browserd"
export CHROME_PATH="${CHROME_PATH:-/usr/bin/chromium}"

log() { printf '[compat] %s\n' "$*" >&2; }

DATA_DIR=""
SERVER_PID=""
SERVER_LOG=""
SERVER_STOPPED=0

print_server_log() {
	if [[ -n "$SERVER_LOG" && -f "$SERVER_LOG" ]]; then
		log "---- server log (last 200 lines) ----"
		tail -n 200 "$SERVER_LOG" >&2 || true
		log "---- end of server log ----"
	fi
}

# leftover_chromium prints "PID ARGS" of every chromium process whose command line
# contains the data dir.
leftover_chromium() {
	[[ -n "$DATA_DIR" ]] || return 0
	local pid args
	for d in /proc/[0-9]*; do
		pid="${d#/proc/}"
		args="$( { tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null || true)"
		[[ -n "$args" ]] || continue
		[[ "$args" == *"$DATA_DIR"* ]] || continue
		[[ "$args" == *chrom* ]] || continue
		printf '%s %s\n' "$pid" "${args:0:200}"
	done
}

# stop_server sends SIGTERM and waits up to 40 s; sets SERVER_EXIT.
SERVER_EXIT=""
PEER_PIDS=()
stop_peers() {
	local pid
	for pid in "${PEER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PEER_PIDS[@]}"; do
		for _ in $(seq 1 400); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PEER_PIDS=()
}
stop_server() {
	[[ -n "$SERVER_PID" && "$SERVER_STOPPED" == 0 ]] || return 0
	SERVER_STOPPED=1
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 1 400); do
			kill -0 "$SERVER_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			log "server did not exit within 40 s of SIGTERM; killing it"
			kill -KILL "$SERVER_PID" 2>/dev/null || true
		fi
	fi
	set +e
	wait "$SERVER_PID" 2>/dev/null
	SERVER_EXIT=$?
	set -e
}

cleanup() {
	local rc=$?
	trap - EXIT
	set +e
	if [[ "$SERVER_STOPPED" == 0 && -n "$SERVER_PID" ]]; then
		stop_server
		print_server_log
	fi
	stop_peers
	# Chromium processes of our own server that outlived it (already reported as a failure
	# by the main path when it got that far): end them by pid so the machine stays clean.
	local left
	left="$(leftover_chromium)"
	if [[ -n "$left" ]]; then
		log "killing leftover chromium processes of this run:"
		printf '%s\n' "$left" >&2
		while read -r pid _; do kill -KILL "$pid" 2>/dev/null; done <<<"$left"
	fi
	if [[ -n "$DATA_DIR" && -d "$DATA_DIR" ]]; then
		if [[ "${KEEP_DATA_DIR:-0}" == 1 ]]; then
			log "keeping data dir $DATA_DIR"
		else
			rm -rf "$DATA_DIR"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ----
log "building $BIN"
(cd "$ROOT_DIR" && go build -o "$BIN" ./cmd/browserd)

# ---- node dependencies ----
cd "$COMPAT_DIR"
if [[ -L node_modules ]]; then
	# A shared install (a git worktree's link to the main checkout's): never reinstall
	# through the link, npm ci would first empty the directory it points to.
	log "node_modules links to $(readlink node_modules); using that install as it is"
elif [[ ! -d node_modules || ! -f node_modules/.package-lock.json \
	|| package-lock.json -nt node_modules/.package-lock.json \
	|| package.json -nt node_modules/.package-lock.json ]]; then
	log "installing node dependencies (npm ci)"
	npm ci --no-audit --no-fund
fi

# ---- server ----
DATA_DIR="$(mktemp -d "${TMPDIR:-/tmp}/browserd-compat.XXXXXX")"
# Searchable by the browsers' uids, so that their directories stay under the data dir
# (and leftover_chromium finds them by it); the test pages are on loopback.
chmod 711 "$DATA_DIR"
SERVER_LOG="$DATA_DIR/server.log"
PORT="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
API_KEY="bb_compat_$(node -e 'console.log(require("crypto").randomBytes(24).toString("hex"))')"
BASE_URL="http://127.0.0.1:$PORT"

SERVER_FLAGS=(--allow-private-networks --webhook-allow-http --webhook-allow-private-networks --webhook-retry-min 200ms)
PEERS="${COMPAT_PEERS:-0}"
NODE_FLAGS=()
if [[ "$PEERS" != 0 ]]; then
	[[ "${BROWSERD_DATABASE:-}" == postgres* && -n "${BROWSERD_BLOB_STORE:-}" ]] \
		|| { log "COMPAT_PEERS needs BROWSERD_DATABASE=postgres://… and BROWSERD_BLOB_STORE"; exit 2; }
	# A node's SIGTERM drains it for --drain-timeout (5m by default) first.
	NODE_FLAGS=(--cluster-url "$BASE_URL" --max-sessions 1 --pool-size 0 --drain-timeout 5s)
fi
log "starting browserd on $BASE_URL (data dir $DATA_DIR)"
BROWSERD_API_KEY="$API_KEY" BROWSERD_CHROME="$CHROME_PATH" \
	"$BIN" serve --addr "127.0.0.1:$PORT" --data-dir "$DATA_DIR" "${SERVER_FLAGS[@]}" "${NODE_FLAGS[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

ready=0
for _ in $(seq 1 300); do
	if ! kill -0 "$SERVER_PID" 2>/dev/null; then
		log "server exited during startup"
		break
	fi
	code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE_URL/healthz" || true)"
	if [[ "$code" == 200 ]]; then
		ready=1
		break
	fi
	sleep 0.1
done
if [[ "$ready" != 1 ]]; then
	log "server did not become healthy on $BASE_URL/healthz within 30 s"
	stop_server
	print_server_log
	exit 1
fi
log "server is up (pid $SERVER_PID)"

# wait_healthy URL PID: up to 30 s for URL/healthz while PID lives.
wait_healthy() {
	for _ in $(seq 1 300); do
		kill -0 "$2" 2>/dev/null || return 1
		[[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/healthz" || true)" == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# ---- cluster: the first node full with another project's session, then the peers ----
export COMPAT_SERVER_PORTS="$PORT"
if [[ "$PEERS" != 0 ]]; then
	HOLD_PROJECT="$("$BIN" admin projects create --data-dir "$DATA_DIR" --name holder --concurrency 1 --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))')"
	HOLD_KEY="$("$BIN" admin keys create --data-dir "$DATA_DIR" --project "$HOLD_PROJECT" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')"
	curl -sf -o /dev/null -X POST -H "X-BB-API-Key: $HOLD_KEY" -H 'Content-Type: application/json' \
		-d '{"keepAlive":true,"timeout":3600}' "$BASE_URL/v1/sessions" \
		|| { log "the holder session could not be created on the first node"; exit 1; }
	for i in $(seq 1 "$PEERS"); do
		PP="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
		mkdir -p "$DATA_DIR/peer-$i" && chmod 711 "$DATA_DIR/peer-$i"
		BROWSERD_CHROME="$CHROME_PATH" "$BIN" serve --addr "127.0.0.1:$PP" --data-dir "$DATA_DIR/peer-$i" \
			--cluster-url "http://127.0.0.1:$PP" --drain-timeout 5s "${SERVER_FLAGS[@]}" >"$DATA_DIR/peer-$i.log" 2>&1 &
		PEER_PIDS+=($!)
		wait_healthy "http://127.0.0.1:$PP" "$!" || { log "peer $i did not become healthy"; tail -50 "$DATA_DIR/peer-$i.log" >&2; exit 1; }
		COMPAT_SERVER_PORTS="$COMPAT_SERVER_PORTS $PP"
	done
	# Each node learns its peers from its heartbeats (every 2 s).
	sleep 5
	log "cluster: first node $BASE_URL (full), peers on ports ${COMPAT_SERVER_PORTS#* }"
fi

# ---- a second project with concurrency 1 (for the 429 test) ----
json_field() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];if(v===undefined||v===null||v===""){process.exit(1)}console.log(v)})' "$1"; }

LIMITED_PROJECT_ID="$("$BIN" admin projects create --data-dir "$DATA_DIR" --name limited --concurrency 1 --json | json_field id)"
LIMITED_API_KEY="$("$BIN" admin keys create --data-dir "$DATA_DIR" --project "$LIMITED_PROJECT_ID" --json | json_field key)"

# The default project: the one the bootstrap key belongs to.
PROJECT_ID="$(curl -sf -H "X-BB-API-Key: $API_KEY" "$BASE_URL/v1/projects" \
	| node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const ps=JSON.parse(s);const p=ps.find(p=>p.name!=="limited"&&p.name!=="holder")||ps[0];console.log(p.id)})')"

export BROWSERBASE_BASE_URL="$BASE_URL"
export BROWSERBASE_API_KEY="$API_KEY"
export BROWSERBASE_PROJECT_ID="$PROJECT_ID"
export LIMITED_API_KEY LIMITED_PROJECT_ID
log "default project $BROWSERBASE_PROJECT_ID, limited project $LIMITED_PROJECT_ID"

# ---- tests ----
if [[ $# -gt 0 ]]; then
	TEST_ARGS=("$@")
else
	# The explicit list works on every Node >= 20 (newer ones take globs, not directories).
	TEST_ARGS=(tests/*.test.mjs)
fi
set +e
node --test --test-concurrency=1 --test-reporter="${TEST_REPORTER:-spec}" "${TEST_ARGS[@]}"
TEST_STATUS=$?
set -e

# ---- shutdown checks ----
STATUS=$TEST_STATUS
log "stopping server (SIGTERM)"
stop_peers
stop_server
if [[ "$SERVER_EXIT" != 0 ]]; then
	log "FAIL: server exited with status $SERVER_EXIT after SIGTERM (want 0)"
	STATUS=1
fi
sleep 0.5
LEFT="$(leftover_chromium)"
if [[ -n "$LEFT" ]]; then
	log "FAIL: chromium processes outlived the server:"
	printf '%s\n' "$LEFT" >&2
	STATUS=1
fi
if [[ "$STATUS" != 0 ]]; then
	print_server_log
fi
if [[ "$TEST_STATUS" == 0 && "$STATUS" == 0 ]]; then
	log "PASS"
else
	log "FAIL (tests exit $TEST_STATUS, server exit ${SERVER_EXIT:-?})"
fi
exit "$STATUS"
