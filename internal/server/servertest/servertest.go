// Package servertest starts browserd's production server (server.Main, with real
// Chromium and SQLite) in the test's process, for the tests of the packages that talk to
// it over HTTP: the CLI today, the typed client next.
package servertest

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/server"
)

// APIKey is the default project's key of the servers DefaultEnv starts.
const APIKey = "bb_e2e_test_key_0123456789"

// DefaultEnv is the environment of a server whose default project has APIKey.
func DefaultEnv() map[string]string { return map[string]string{"BROWSERD_API_KEY": APIKey} }

// Server is a running server.
type Server struct {
	URL     string // http://127.0.0.1:port
	DataDir string
	Main    *server.Main
}

// Start runs `browserd serve --addr 127.0.0.1:0 --data-dir dataDir --pool-size 0
// --allow-private-networks args…` with exactly the environment env (a later flag in
// args wins). It skips the test without Chromium. Cleanup stops the server and checks
// that none of its browsers is left.
func Start(t *testing.T, dataDir string, env map[string]string, args ...string) *Server {
	t.Helper()
	chrometest.Chrome(t) // skip without Chromium
	searchable(t, dataDir)
	m := server.NewMain("test")
	m.Stdout, m.Stderr = io.Discard, t.Output()
	argv := append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--pool-size", "0", "--allow-private-networks"}, args...)
	if err := m.ParseFlags(argv, func(k string) string { return env[k] }); err != nil {
		t.Fatalf("browserd serve %q: %v", argv, err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("browserd serve: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
		chrometest.AssertNoLeaks(t, filepath.Join(dataDir, "run"))
	})
	return &Server{URL: m.URL, DataDir: dataDir, Main: m}
}

// searchable makes dataDir (if missing) and lets other users search it and its parents
// up to the temp dir, so that the browsers' directories stay in dataDir/run as root
// (internal/chrome/sandbox.go), where Cleanup looks for what they leave.
func searchable(t testing.TB, dataDir string) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		t.Fatal(err)
	}
	for d := dataDir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
}
