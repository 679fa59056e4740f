package chrome_test

import (
	"strconv"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestLaunchNetworkFinal checks a real browser's network namespace once it is ready:
// everything the kernel could change on its own there (a link coming up, a link-local
// IPv6 address, duplicate address detection) happened before Chromium started. A change
// Chromium sees later fails whatever connection it is setting up with
// net::ERR_NETWORK_CHANGED: a fresh session's first navigation did so 1–2 s after the
// launch (docs/PERFORMANCE.md).
func TestLaunchNetworkFinal(t *testing.T) {
	b := launchReady(t, chrometest.RealLauncher(t), bb.LaunchOptions{SessionID: "netns"})
	problems, err := chrome.NetworkProblems("/proc/" + strconv.Itoa(chromiumMain(t, b)) + "/ns/net")
	if err != nil {
		t.Fatal(err) // entering another namespace needs root; the sandbox tests run as root
	}
	for _, p := range problems {
		t.Error(p)
	}
}
