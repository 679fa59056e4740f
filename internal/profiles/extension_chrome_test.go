package profiles_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/profiles"
)

// markerExtension is an MV3 extension with a service worker and a content script that
// marks every page it runs in.
var markerExtension = map[string]string{
	"manifest.json": `{
  "manifest_version": 3,
  "name": "browserd marker",
  "version": "1.0",
  "background": {"service_worker": "bg.js"},
  "content_scripts": [{"matches": ["<all_urls>"], "js": ["js/cs.js"], "run_at": "document_start"}]
}`,
	"bg.js":    `chrome.runtime.onInstalled.addListener(() => {});`,
	"js/cs.js": `document.documentElement.dataset.browserdMarker = "content-script";`,
}

// TestExtensionRuns uploads an MV3 extension and checks that a session started with
// it runs its content script in pages and its service worker, also after the
// extension was deleted.
func TestExtensionRuns(t *testing.T) {
	srv := site(t)
	e := newChromeEnv(t, "", bb.ManagerConfig{})
	ext, err := e.svc.CreateExtension(context.Background(), e.project(t).ID, "marker.zip",
		bytes.NewReader(extensionZip(t, markerExtension)))
	if err != nil {
		t.Fatalf("CreateExtension: %v", err)
	}
	s, p := e.start(t, bb.CreateSessionRequest{ExtensionID: ext.ID})
	if s.ExtensionID != ext.ID {
		t.Errorf("session extensionId = %q; want %q", s.ExtensionID, ext.ID)
	}
	p.navigate(t, srv.URL+"/")
	if got := p.eval(t, `document.documentElement.dataset.browserdMarker || "none"`); got != "content-script" {
		t.Errorf("marker = %q; want the content script's", got)
	}
	waitServiceWorker(t, p)

	// Deleting the extension does not affect the running session.
	if err := e.svc.DeleteExtension(context.Background(), e.project(t).ID, ext.ID); err != nil {
		t.Fatal(err)
	}
	p.navigate(t, srv.URL+"/whoami")
	if got := p.eval(t, `document.documentElement.dataset.browserdMarker || "none"`); got != "content-script" {
		t.Errorf("marker after deleting the extension = %q; want the content script's", got)
	}
	e.release(t, s, p)
	if _, err := e.m.CreateSession(context.Background(), e.project(t).ID, bb.CreateSessionRequest{ExtensionID: ext.ID}); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("CreateSession with a deleted extension = %v; want not found", err)
	}

	// A session without the extension has no marker.
	s, p = e.start(t, bb.CreateSessionRequest{})
	p.navigate(t, srv.URL+"/")
	if got := p.eval(t, `document.documentElement.dataset.browserdMarker || "none"`); got != "none" {
		t.Errorf("marker without the extension = %q; want none", got)
	}
	e.release(t, s, p)
}

// waitServiceWorker waits for the extension's service worker target.
func waitServiceWorker(t *testing.T, p *page) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var targets struct {
			TargetInfos []struct{ Type, URL string } `json:"targetInfos"`
		}
		p.call(t, "", "Target.getTargets", nil, &targets)
		for _, ti := range targets.TargetInfos {
			if ti.Type == "service_worker" && strings.HasPrefix(ti.URL, "chrome-extension://") && strings.HasSuffix(ti.URL, "/bg.js") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no extension service worker among %+v", targets.TargetInfos)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkContextSession measures what a context adds to a session's start and end,
// with paired runs (a plain session, then one on a context holding a login, persist
// true) so that the noise of a shared machine hits both alike. Metrics, medians in ms:
// start is CreateSession until RUNNING (both cold: the Manager has no warm pool here);
// end is REQUEST_RELEASE until the browser's files are gone; writeback is
// REQUEST_RELEASE until the context points at its new snapshot.
//
//	go test -run '^$' -bench BenchmarkContextSession -benchtime 10x .
func BenchmarkContextSession(b *testing.B) {
	srv := site(b)
	e := newChromeEnv(b, "", bb.ManagerConfig{})
	ctx := context.Background()
	logged := e.newContext(b)
	s, p := e.start(b, withContext(logged.ID, true))
	logIn(b, p, srv.URL, "bench")
	e.release(b, s, p)
	e.waitSnapshot(b, logged.ID, "")

	// session runs one session and returns its start, end and write-back times.
	session := func(b *testing.B, req bb.CreateSessionRequest) (start, end, writeback time.Duration) {
		var old string
		if req.Settings.Context != nil {
			old = e.context(b, req.Settings.Context.ID).Snapshot
		}
		t0 := time.Now()
		s, err := e.m.CreateSession(ctx, e.project(b).ID, req)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Since(t0)
		t1 := time.Now()
		if _, err := e.m.ReleaseSession(ctx, s.ProjectID, s.ID); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			if req.Settings.Context != nil && writeback == 0 && e.context(b, req.Settings.Context.ID).Snapshot != old {
				writeback = time.Since(t1)
			}
			_, err := os.Stat(filepath.Join(e.runDir, s.ID))
			done = os.IsNotExist(err)
			time.Sleep(2 * time.Millisecond)
		}
		return start, time.Since(t1), writeback
	}
	b.Run("paired", func(b *testing.B) {
		var m [5][]time.Duration // plain start, plain end, context start, context end, write-back
		for b.Loop() {
			ps, pe, _ := session(b, bb.CreateSessionRequest{})
			cs, ce, cw := session(b, withContext(logged.ID, true))
			for i, d := range []time.Duration{ps, pe, cs, ce, cw} {
				m[i] = append(m[i], d)
			}
		}
		for i, name := range []string{"plain-start", "plain-end", "context-start", "context-end", "writeback"} {
			b.ReportMetric(medianMS(m[i]), name+"-ms")
		}
		b.ReportMetric(float64(e.context(b, logged.ID).SnapshotSize), "snapshot-bytes")
	})

	// The work a context adds, alone: restoring its snapshot before the launch, and
	// writing one (after the browser stopped) and storing it.
	c := e.context(b, logged.ID)
	b.Run("snapshot-restore", func(b *testing.B) {
		for b.Loop() {
			rc, err := e.blobs.Open(ctx, c.Snapshot+"snapshot")
			if err != nil {
				b.Fatal(err)
			}
			if err := profiles.ReadSnapshotForTest(rc, e.storage.SnapshotKey, c.ID, b.TempDir()); err != nil {
				b.Fatal(err)
			}
			rc.Close()
		}
	})
	profile := b.TempDir()
	rc, err := e.blobs.Open(ctx, c.Snapshot+"snapshot")
	if err != nil {
		b.Fatal(err)
	}
	if err := profiles.ReadSnapshotForTest(rc, e.storage.SnapshotKey, c.ID, profile); err != nil {
		b.Fatal(err)
	}
	rc.Close()
	b.Run("snapshot-save", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			if err := profiles.WriteSnapshotForTest(&buf, e.storage.SnapshotKey, c.ID, profile); err != nil {
				b.Fatal(err)
			}
			if _, err := e.blobs.Put(ctx, "bench/snapshot", &buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func medianMS(ds []time.Duration) float64 {
	slices.Sort(ds)
	if len(ds) == 0 {
		return 0
	}
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}
