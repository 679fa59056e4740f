#!/usr/bin/env bash
# Measures POST /v1/sessions with proxySettings.caCertificates, warm and cold, beside the
# same creates without certificates (docs/PERFORMANCE.md, "Custom CA certificates").
# Four servers run at once and the samples alternate between them, so that the
# machine's load falls on all four alike:
#   cold-ca    --pool-keyed 0: every create with the CA launches (certutil + Chromium)
#   cold-plain --pool-size 0: every create launches, no CA
#   warm-ca    --pool-keyed 2: the CA's shelf is refilled after each take
#   warm-plain --pool-size 1: the default shelf
#   bash scripts/measure-certs.sh [SAMPLES]   (needs bin/browserd, openssl, curl, root)
set -euo pipefail
N="${1:-15}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/bin/browserd"
KEY="measure-certs-api-key-0123456789"
WORK="$(mktemp -d)"
chmod 711 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \
  -subj "/CN=measure CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null

declare -A URL
start() { # name args...
  local name="$1"; shift
  mkdir -m 711 "$WORK/$name"
  BROWSERD_API_KEY="$KEY" "$BIN" serve --addr 127.0.0.1:0 --data-dir "$WORK/$name" "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    grep -q "listening" "$WORK/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  URL[$name]="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/$name.out" | head -1)"
}
start cold-ca --pool-size 1 --pool-keyed 0
start cold-plain --pool-size 0
start warm-ca --pool-size 1 --pool-keyed 2
start warm-plain --pool-size 1

declare -A CERT
for name in cold-ca warm-ca; do
  CERT[$name]="$(curl -sf -H "X-BB-API-Key: $KEY" -F "file=@ca.pem" "${URL[$name]}/v1/certificates" | sed 's/.*"id":"\([^"]*\)".*/\1/')"
done
body() { # name
  case "$1" in
    *-ca) printf '{"proxySettings":{"caCertificates":["%s"]}}' "${CERT[$1]}" ;;
    *) printf '{}' ;;
  esac
}
sample() { # name → ms
  local out id t
  out="$(curl -s -w ' %{time_total}' -H "X-BB-API-Key: $KEY" -H 'Content-Type: application/json' -d "$(body "$1")" "${URL[$1]}/v1/sessions")"
  id="$(head -1 <<<"$out" | sed 's/.*"id":"\([^"]*\)".*/\1/')"
  t="${out##* }"
  curl -s -o /dev/null -H "X-BB-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"status":"REQUEST_RELEASE"}' "${URL[$1]}/v1/sessions/$id"
  awk -v t="$t" 'BEGIN { printf "%.0f\n", t * 1000 }'
}
# A first create on warm-ca makes its shelf; not counted.
sample warm-ca >/dev/null
sleep 5
declare -A MS
for i in $(seq 1 "$N"); do
  for name in cold-ca cold-plain warm-ca warm-plain; do
    MS[$name]+="$(sample "$name") "
  done
  sleep 4 # refills
done
stats() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { printf "p50 %d ms, p90 %d ms, min %d, max %d (n=%d)", a[int((NR + 1) / 2)], a[int(NR * 0.9 + 0.5)], a[1], a[NR], NR }'; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
for name in cold-ca cold-plain warm-ca warm-plain; do
  printf '%-11s %s\n' "$name" "$(stats <<<"${MS[$name]}")"
done
