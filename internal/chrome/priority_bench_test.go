package chrome

import (
	"context"
	"os"
	"testing"

	bb "github.com/browserd/browserd"
)

// BenchmarkRaiseTreePass measures one pass of Foreground over a running browser whose
// threads are all at normal priority already (the last pass of every Foreground).
func BenchmarkRaiseTreePass(b *testing.B) {
	path, err := FindChrome("")
	if err != nil {
		b.Skip(err)
	}
	l, err := New(Config{Path: path, RunDir: b.TempDir(), Nice: 10})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() }) // after the browser's cleanup
	br, err := l.launch(context.Background(), bb.LaunchOptions{SessionID: "pass"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { // nothing of the browser may be left
		if err := br.Close(context.Background()); err != nil {
			b.Error(err)
		}
		if groupAlive(br.pid) {
			b.Errorf("process group %d left", br.pid)
		}
		if entries, err := os.ReadDir(l.RunDir()); err != nil || len(entries) > 0 {
			b.Errorf("run dir: %v, entries %v", err, entries)
		}
	})
	if err := br.WaitReady(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if n, err := raiseTree(br.pid, 10); err != nil || n != 0 {
			b.Fatalf("raiseTree = %d, %v", n, err)
		}
	}
}
