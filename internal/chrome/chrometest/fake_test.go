package chrometest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

func TestFakeLauncher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{ReadyDelay: 3 * time.Second, DevToolsURL: "ws://fake/devtools/browser/x", RunDir: "/run"}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		b, err := l.Launch(ctx, bb.LaunchOptions{SessionID: "s1"})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := b.WaitReady(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("WaitReady took %v; want 3s", got)
		}
		if b.DevToolsURL() != l.DevToolsURL || b.Dir() != "/run/s1" {
			t.Errorf("DevToolsURL, Dir = %q, %q", b.DevToolsURL(), b.Dir())
		}

		// A crash closes Exited; WaitReady then fails like a real browser's.
		b2, err := l.Launch(ctx, bb.LaunchOptions{SessionID: "s2"})
		if err != nil {
			t.Fatal(err)
		}
		b2.(*chrometest.Browser).Crash()
		if err := b2.WaitReady(t.Context()); !errors.Is(err, chrome.ErrExited) {
			t.Errorf("WaitReady after Crash = %v; want ErrExited", err)
		}
		if err := b2.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := b2.Close(t.Context()); err != nil {
			t.Fatal(err)
		}

		// Cancelling the owning context closes the rest.
		cancel()
		synctest.Wait()
		select {
		case <-b.Exited():
		default:
			t.Error("cancelling the launch context did not close the browser")
		}
		if l.Launched() != 2 || l.Closed() != 2 || l.Live() != 0 {
			t.Errorf("launched, closed, live = %d, %d, %d; want 2, 2, 0", l.Launched(), l.Closed(), l.Live())
		}

		l.LaunchErr = errors.New("no chrome")
		if _, err := l.Launch(t.Context(), bb.LaunchOptions{SessionID: "s3"}); !errors.Is(err, l.LaunchErr) {
			t.Errorf("Launch with LaunchErr = %v", err)
		}
	})
}

func TestStart(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	if b.DevToolsURL() == "" || b.PID() <= 0 {
		t.Errorf("Start gave DevToolsURL %q, PID %d", b.DevToolsURL(), b.PID())
	}
}
