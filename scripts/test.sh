#!/usr/bin/env bash
# One command to run every test, installing what the tests need first:
#   ./scripts/test.sh
# gofmt and vet checks, `go test -race ./...` with real Chromium, PostgreSQL (private
# clusters the tests start) and a real S3 server (SeaweedFS, built once into
# ~/.cache/browserd: scripts/seaweedfs.sh) (as root, the sandbox
# tests once more as an unprivileged user: scripts/test-unprivileged.sh), a short run of every
# fuzz target, and the npm compatibility suite (official Browserbase SDK, Playwright,
# Puppeteer) against a real server, on the embedded defaults and on PostgreSQL + S3, and the
# Helm chart (deploy/helm/test: helm lint and helm template with the pinned helm, every
# rendered object validated against the Kubernetes schemas).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh --test
export BROWSERD_REQUIRE_CHROME=1
# The PostgreSQL store runs the same contract suite as SQLite, on private clusters the
# tests start (internal/postgres/pgtest): missing PostgreSQL fails them instead of skipping.
export BROWSERD_REQUIRE_POSTGRES=1

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './compat/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted" >&2; exit 1; fi
go vet ./...

echo "== Helm chart: helm lint, helm template, Kubernetes schemas (deploy/helm/test, a module of its own)"
# The pinned helm (helm.sh/helm/v4, the module's tool) is built once into Go's build cache:
# about 5 minutes the first time, seconds after.
(cd deploy/helm/test && go vet ./... && go test -count=1 ./...)

echo "== rrweb recorder bundle is what the pinned npm packages build"
bash scripts/rrweb/build.sh --check
echo "== dashboard inspector bundle is what the pinned npm packages build"
bash scripts/inspector/build.sh --check

echo "== SeaweedFS, the real S3 server of the blob store tests (built once, then cached)"
BROWSERD_WEED=$(bash scripts/seaweedfs.sh)
export BROWSERD_WEED BROWSERD_REQUIRE_S3=1

echo "== go test -race ./..."
go test -race -count=1 -timeout 15m ./...

# Browsers are confined differently as root (a uid per browser) and as any other user
# (user namespaces only): test both. As root (as CI runs), the sandbox tests run once
# more as an unprivileged user; otherwise the run above already is the unprivileged one.
if [ "$(id -u)" -eq 0 ]; then
  echo "== sandbox tests as an unprivileged user"
  bash scripts/test-unprivileged.sh
fi

echo "== fuzz targets (${FUZZTIME:=3s} each)"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //' | sort -u); do
    echo "-- $pkg $target"
    for try in 1 2; do
      if out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1); then break; fi
      # Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
      # exceeded" as -fuzztime runs out (golang/go#75804, fixed in Go 1.27): no input
      # is written then. Run such a target once more; anything else fails at once.
      if [ "$try" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
        echo "   (Go fuzz deadline race, golang/go#75804; running $target again)"
        continue
      fi
      echo "$out" >&2; exit 1
    done
  done
done

echo "== compatibility suite (npm clients against a real server)"
bash compat/run.sh

echo "== compatibility suite on PostgreSQL + S3 (a private cluster and SeaweedFS)"
BROWSERD_COMPAT_PRODUCTION=1 go test -count=1 -timeout 30m -run TestCompatOnPostgresAndS3 ./internal/compatprod

echo "== compatibility suite against one node of a three-node cluster (browsers on the other two)"
BROWSERD_COMPAT_CLUSTER=1 go test -count=1 -timeout 30m -run TestCompatCluster ./internal/compatprod
