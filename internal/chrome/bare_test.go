package chrome_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestBareLauncher starts a bare Chromium with the command line of a sandboxed one: it
// answers CDP, and Stop leaves no process or file behind.
func TestBareLauncher(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	runDir := filepath.Join(t.TempDir(), "bare")
	l, err := chrome.NewBareLauncher(b.PID(), runDir)
	if err != nil {
		t.Fatal(err)
	}
	path, args := l.Command()
	if path == "" || !strings.Contains(strings.Join(args, " "), "--user-data-dir=") {
		t.Errorf("Command() = %q, %q; want the binary and a --user-data-dir", path, args)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bare, err := l.Launch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := chrometest.Dial(t, bare.DevToolsURL())
	var v struct {
		Product string `json:"product"`
	}
	if err := c.Call(ctx, "", "Browser.getVersion", nil, &v); err != nil || !strings.Contains(v.Product, "Chrome") {
		t.Errorf("Browser.getVersion = %+v, %v; want a Chrome product", v, err)
	}
	if bare.PGID() <= 0 {
		t.Errorf("PGID() = %d", bare.PGID())
	}
	if err := l.Stop(ctx, bare); err != nil {
		t.Error(err)
	}
	chrometest.AssertNoLeaks(t, runDir)
}
