package recorder

import (
	"log/slog"
	"context"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// TestErrorPageNotPaused: a recorded page that navigates to an error page (a file that
// does not exist, a refused connection) goes on running: the recorder never leaves a
// page paused waiting for it.
func TestErrorPageNotPaused(t *testing.T) {
	b := chrometest.Start(t, bb.LaunchOptions{})
	var got sink
	r := New(Config{FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	stop, err := r.Start(t.Context(), b.DevToolsURL(), bb.AgentOptions{SessionID: "s", Record: true, Events: got.add})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c := newClient(t, b.DevToolsURL())
	sid := c.page(t, "about:blank")
	for _, u := range []string{"file:///nonexistent/file", "http://10.255.255.1:9/", "about:blank", "file:///nonexistent/again"} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		start := time.Now()
		if err := c.call(ctx, sid, "Page.navigate", map[string]any{"url": u}, nil); err != nil {
			t.Fatalf("navigate %s: %v", u, err)
		}
		var res struct {
			Result struct {
				Value string `json:"value"`
			} `json:"result"`
		}
		err := c.call(ctx, sid, "Runtime.evaluate", map[string]any{"expression": "location.href", "returnByValue": true}, &res)
		cancel()
		if err != nil {
			t.Fatalf("after navigating to %s: evaluate: %v (%v)", u, err, time.Since(start))
		}
		t.Logf("%s → %s in %v", u, res.Result.Value, time.Since(start))
	}
}
