package chrometest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/proxy"
)

// RequireEnv is the environment variable that turns a missing Chromium from a skip into
// a failure (set in CI).
const RequireEnv = "BROWSERD_REQUIRE_CHROME"

// Chrome returns the path of a real Chromium binary. When none is found it skips the
// test, or fails it when BROWSERD_REQUIRE_CHROME=1.
func Chrome(t testing.TB) string {
	t.Helper()
	p, err := chrome.FindChrome("")
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but: %v", RequireEnv, err)
		}
		t.Skipf("no chromium: %v", err)
	}
	return p
}

// RealLauncher returns a real chrome.Launcher with its own RunDir in t.TempDir(), logging to
// the test's output. It skips the test when no Chromium is found (see Chrome).
func RealLauncher(t testing.TB) *chrome.Launcher {
	t.Helper()
	return New(t, chrome.Config{
		Path:   Chrome(t),
		RunDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
}

// New returns chrome.New(cfg) or fails the test. Cleanup closes the Launcher and checks
// that the browsers' own copy of the run dir under the sandbox root (as root, when
// cfg.RunDir's parents cannot be searched by other users) is gone with it.
func New(t testing.TB, cfg chrome.Config) *chrome.Launcher {
	t.Helper()
	l, err := chrome.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close launcher: %v", err)
		}
		if dir := l.RunDir(); dir != cfg.RunDir {
			if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("sandbox run dir %s left behind (stat: %v)", dir, err)
			}
		}
	})
	return l
}

// Proxies returns session proxies for a Manager under test: every host direct, loopback
// and private addresses allowed (tests browse httptest servers), as a server with
// --allow-private-networks runs them.
func Proxies() *proxy.Starter {
	return proxy.NewStarter(proxyConfig())
}

// proxyConfig is the test proxies' configuration: private networks allowed, and every
// name under .test (RFC 6761) resolving to 127.0.0.1, so that tests can give loopback
// servers host names (browsers behind a proxy never resolve names themselves).
func proxyConfig() proxy.Config {
	return proxy.Config{AllowPrivate: true, Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
		if host == "test" || strings.HasSuffix(host, ".test") {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
}

// Egress returns an egress for a browser under test (bb.Browser.SetEgress): a session
// proxy as Proxies starts them, closed by cleanup.
func Egress(t testing.TB) func(net.Conn) {
	t.Helper()
	p, err := proxy.New("test", bb.NetworkPlan{}, proxyConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return func(c net.Conn) {
		if err := p.ServeConn(c); err != nil {
			c.Close() // the proxy is closed: the browser sees a refused connection
		}
	}
}

// Start launches a real browser with opts (SessionID defaults to "test") in a fresh
// RunDir and waits until it is ready. Cleanup closes it and checks with AssertNoLeaks
// that nothing of it is left. It skips the test when no Chromium is found.
func Start(t testing.TB, opts bb.LaunchOptions) bb.Browser {
	t.Helper()
	l := RealLauncher(t)
	if opts.SessionID == "" {
		opts.SessionID = "test"
	}
	// The browser belongs to the test's cleanup, not to t.Context(), which ends first.
	b, err := l.Launch(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close browser: %v", err)
		}
		AssertNoLeaks(t, l.RunDir())
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	b.SetEgress(Egress(t))
	return b
}

// AssertNoLeaks fails the test when a live process has runDir in its command line or
// runDir has entries left.
func AssertNoLeaks(t testing.TB, runDir string) {
	t.Helper()
	for _, p := range Processes(t, runDir) {
		t.Errorf("process left behind: %s", p)
	}
	entries, err := os.ReadDir(runDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read run dir: %v", err)
	}
	for _, e := range entries {
		t.Errorf("file left in run dir: %s", e.Name())
	}
}

// Processes returns "pid cmdline" (cmdline shortened) for every live, non-zombie
// process whose command line contains s.
func Processes(t testing.TB, s string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(s)) || zombie(pid) {
			continue
		}
		line := strings.ReplaceAll(string(cmdline), "\x00", " ")
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		found = append(found, strconv.Itoa(pid)+" "+line)
	}
	return found
}

// zombie reports whether pid is a zombie (or gone).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}
