#!/usr/bin/env bash
# One command to set up and run browserd on its embedded defaults:
#   ./scripts/run.sh [browserd serve flags…]
# It installs Chromium if missing, builds bin/browserd and starts `browserd serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
go build -trimpath -o bin/browserd ./cmd/browserd
exec bin/browserd serve "$@"
