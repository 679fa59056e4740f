#!/usr/bin/env bash
# Installs what browserd needs to run (Chromium, bubblewrap) and, with --test, what its tests need
# (ChromeDriver, PostgreSQL, the npm clients). Safe to run again: it installs only what is missing.
set -euo pipefail

need_apt=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || need_apt+=(chromium)
# Every browser runs confined by bubblewrap (docs/SECURITY.md).
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
# Sessions that trust custom CA certificates (proxySettings.caCertificates) get an NSS
# database of their own, made with certutil.
command -v certutil >/dev/null 2>&1 || need_apt+=(libnss3-tools)
# Session videos (internal/replays) are encoded with ffmpeg (libx264); the tests read
# them back with ffprobe, from the same package.
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
if [ "${1:-}" = "--test" ]; then
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  # The PostgreSQL store's tests start private clusters with initdb and postgres
  # (internal/postgres/pgtest); the package's own service is not needed.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
  # The compat suite's certificates test makes its test CA with the openssl CLI.
  command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "installing ${need_apt[*]} with apt-get" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null 2>&1 || { echo "Go 1.26 is required (https://go.dev/dl/)" >&2; exit 1; }
if [ "${1:-}" = "--test" ]; then
  # The npm clients (pinned in compat/package-lock.json): the compat suite and the bench's
  # clients phase (its Go test too) drive them.
  command -v npm >/dev/null 2>&1 || { echo "Node.js 20 and npm are required for the tests" >&2; exit 1; }
  if [[ ! -d compat/node_modules || ! -f compat/node_modules/.package-lock.json \
    || compat/package-lock.json -nt compat/node_modules/.package-lock.json \
    || compat/package.json -nt compat/node_modules/.package-lock.json ]]; then
    echo "installing the npm clients (npm ci --prefix compat)" >&2
    npm ci --prefix compat --no-audit --no-fund >/dev/null
  fi
fi
