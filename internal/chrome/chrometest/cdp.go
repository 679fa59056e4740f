package chrometest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/cdp"
)

// Dial connects a CDP client to a DevTools websocket (a browser's, or a gateway's
// connect URL) for a test: it fails the test when it cannot, and closes the connection
// (without a close handshake) when the test ends.
func Dial(t testing.TB, url string) *cdp.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cdp.Dial(ctx, url, cdp.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", strings.Split(url, "?")[0], err) // no credentials in the log
	}
	t.Cleanup(c.CloseNow)
	return c
}
