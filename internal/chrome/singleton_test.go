package chrome_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestSingletonAfterEarlyUnlink checks that Close removes the singleton dir in /tmp even
// when profile/SingletonSocket is gone already. Chromium unlinks it early in a clean
// shutdown and removes the dir only at the very end (measured: link gone 0.3–2.9 s, dir
// 3–4.7 s after Browser.close), so a browser killed after the stop grace on a loaded
// machine lost the dir. The test unlinks the link itself and gives no grace.
func TestSingletonAfterEarlyUnlink(t *testing.T) {
	path := chrometest.Chrome(t)
	runDir := filepath.Join(t.TempDir(), strings.Repeat("d", 80)) // a long one (TestLongRunDir)
	l := chrometest.New(t, chrome.Config{Path: path, RunDir: runDir, StopGrace: time.Millisecond})
	b := launchReady(t, l, bb.LaunchOptions{SessionID: "unlinked"})
	singleton := singletonDir(t, b) // in the sandbox's /tmp, inside the browser's dir
	if err := os.Remove(filepath.Join(b.Dir(), "profile", "SingletonSocket")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, b, singleton)
	chrometest.AssertNoLeaks(t, runDir)
}
