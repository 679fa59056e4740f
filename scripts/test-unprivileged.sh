#!/usr/bin/env bash
# Runs the real-Chromium tests that exercise the browsers' sandbox as an unprivileged
# user, so that both ways a server can run are tested: as root each browser gets a uid
# of its own; as any other user browsers run under the server's uid in their own user,
# mount, PID and network namespaces (internal/chrome/sandbox.go). scripts/test.sh runs
# this when it runs as root (as CI does); when it does not, its own `go test` run is
# already the unprivileged run.
#   sudo ./scripts/test-unprivileged.sh
# Needs root: it creates the system user $BROWSERD_TEST_USER [browserd-test] if missing,
# builds the test binaries as root and runs them as that user from a temp dir, which it
# removes at the end. The user needs nothing else: no home, no access to the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "test-unprivileged.sh: run as root (it creates a user and runs tests as that user)" >&2
  exit 1
fi
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
user=${BROWSERD_TEST_USER:-browserd-test}
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
fi

# <work>/bin: the test binaries, root's (the user runs them and they serve as the sandbox
# init, but cannot change them); <work>/home: the user's HOME, TMPDIR and working dir.
work=$(mktemp -d /tmp/browserd-unpriv.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -m 0755 "$work/bin"
mkdir -m 0700 "$work/home"
chown "$user:" "$work/home"

# Package, test binary, tests that start real browsers in the sandbox.
suites=(
  "./internal/chrome chrome.test TestSandbox|TestLaunch|TestReap|TestNice|TestLongRunDir|TestSingleton|TestCrash|TestStopKeepsProfile"
  "./internal/server server.test TestSecurityReview|TestLifecycle"
  "./internal/proxy proxy.test TestChromeRefused"
  "./internal/cdpproxy cdpproxy.test TestChromeEndToEnd|TestChromeBrowserClose"
)
pkgs=()
for s in "${suites[@]}"; do pkgs+=("${s%% *}"); done
# The same flags as test.sh's `go test -race`: the packages come from the build cache.
go test -c -race -o "$work/bin/" "${pkgs[@]}"

# The tests check their own run dirs; this checks after each binary that no process of
# the user is left (a browser's last bubblewrap may take a moment to be reaped once the
# test binary, its parent, is gone) and that nothing went to the sandbox root, which
# only root servers use.
uid=$(id -u "$user")
# /proc/<pid> of every process whose real uid is the user's (no procps needed).
user_procs() { grep -ls "^Uid:[[:space:]]*$uid[[:space:]]" /proc/[0-9]*/status | sed 's|/status$||' || true; }
check_left() {
  for _ in $(seq 50); do
    [ -z "$(user_procs)" ] && break
    sleep 0.1
  done
  if [ -n "$(user_procs)" ]; then
    echo "processes of $user left behind by $1:" >&2
    for p in $(user_procs); do echo "${p#/proc/} $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-200)" >&2; done
    exit 1
  fi
  if [ -d /var/tmp/browserd ] && find /var/tmp/browserd -mindepth 1 -user "$user" | grep -q .; then
    echo "files of $user left in /var/tmp/browserd by $1" >&2
    exit 1
  fi
  local left
  left=$(find "$work/home" -mindepth 1 | head -20)
  if [ -n "$left" ]; then
    echo "left in the test user's temp dir by $1:" >&2
    echo "$left" >&2
    exit 1
  fi
}

for s in "${suites[@]}"; do
  read -r pkg bin run <<<"$s"
  echo "-- $pkg as $user: $run"
  (cd "$work/home" && setpriv --reuid="$user" --regid="$user" --init-groups \
    env -i HOME="$work/home" TMPDIR="$work/home" PATH=/usr/local/bin:/usr/bin:/bin \
    LANG=C.UTF-8 BROWSERD_REQUIRE_CHROME=1 \
    "$work/bin/$bin" -test.count=1 -test.timeout=10m -test.run="^($run)")
  check_left "$pkg"
done
