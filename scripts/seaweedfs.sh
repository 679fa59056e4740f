#!/usr/bin/env bash
# Builds the SeaweedFS `weed` binary the S3 tests run as their real S3 server, once, into a
# cache directory outside the checkout, and prints its path. Later runs reuse the binary.
#   bash scripts/seaweedfs.sh            # prints the path, building it first if needed
#   BROWSERD_WEED=$(bash scripts/seaweedfs.sh)
# `go install …/weed@VERSION` is refused (SeaweedFS's go.mod has replace directives), so the
# module is downloaded through the Go module proxy and built inside its directory. The first
# build takes about 7 minutes on 2 cores (a ~230 MB binary); it runs at the lowest CPU
# priority since the machine is shared.
set -euo pipefail
version=v0.0.0-20261109003541-7506e5f91cd6
cache=${BROWSERD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/browserd}
bin=$cache/weed-$version/weed
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
mkdir -p "$cache/weed-$version"
# Only one build at a time, even when two test runs start together.
exec 9>"$cache/weed-$version.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
echo "building SeaweedFS weed $version into $bin (about 7 minutes, once)" >&2
dir=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/seaweedfs/seaweedfs@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/weed" ]; then
  echo "seaweedfs.sh: go mod download gave no module directory" >&2; exit 1
fi
tmp=$bin.tmp.$$
(cd "$dir" && GOFLAGS=-buildvcs=false nice -n 19 go build -trimpath -o "$tmp" ./weed)
mv "$tmp" "$bin"
echo "$bin"
