package chrome_test

import (
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// BenchmarkGroupUsage measures one real browser's process group: what a metrics scrape
// or a session read costs per live session.
func BenchmarkGroupUsage(b *testing.B) {
	br := chrometest.Start(b, bb.LaunchOptions{})
	for b.Loop() {
		if _, err := chrome.GroupUsage(br.PID()); err != nil {
			b.Fatal(err)
		}
	}
}
