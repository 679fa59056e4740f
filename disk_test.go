package browserd_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// writeFile writes n bytes to path, creating its directory.
func writeFile(t *testing.T, path string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, n), 0o600); err != nil {
		t.Fatal(err)
	}
}

// hugeOutside makes a 1 TiB sparse file and a directory with it outside any session,
// for symbolic links to point at.
func hugeOutside(t *testing.T) (file, dir string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "huge")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return file, dir
}

// TestDiskUsage measures a tree like du: every entry a multiple of 4 KiB, symbolic
// links counted as links, never followed (the browser may plant them).
func TestDiskUsage(t *testing.T) {
	huge, hugeDir := hugeOutside(t)
	root := filepath.Join(t.TempDir(), "session")
	writeFile(t, filepath.Join(root, "profile", "Default", "Cookies"), 10000) // 12 KiB
	writeFile(t, filepath.Join(root, "downloads", "a.bin"), 1)                // 4 KiB
	writeFile(t, filepath.Join(root, "tmp", "empty"), 0)                      // 4 KiB
	for _, link := range []struct{ target, name string }{
		{huge, filepath.Join(root, "downloads", "link-to-huge")},
		{hugeDir, filepath.Join(root, "tmp", "link-to-dir")},
		{"/", filepath.Join(root, "root")},
	} {
		if err := os.Symlink(link.target, link.name); err != nil {
			t.Fatal(err)
		}
	}
	// 5 directories (root, profile, Default, downloads, tmp) and 3 links, 4 KiB each.
	const want = 12<<10 + 4<<10 + 4<<10 + 5*4<<10 + 3*4<<10
	got, err := bb.DiskUsage(root, -1)
	if err != nil || got != want {
		t.Errorf("DiskUsage = %d, %v; want %d (the 1 TiB file behind a link must not count)", got, err, want)
	}
	if got, err := bb.DiskUsage(root, 8<<10); err == nil || got <= 8<<10 {
		t.Errorf("DiskUsage with limit 8 KiB = %d, %v; want an early stop over the limit", got, err)
	}
	// A root that is itself a link is not followed either.
	link := filepath.Join(t.TempDir(), "session-link")
	if err := os.Symlink(hugeDir, link); err != nil {
		t.Fatal(err)
	}
	if got, err := bb.DiskUsage(link, -1); err != nil || got != 4<<10 {
		t.Errorf("DiskUsage(link to a dir) = %d, %v; want 4096", got, err)
	}
	if got, err := bb.DiskUsage(filepath.Join(root, "missing"), -1); err != nil || got != 0 {
		t.Errorf("DiskUsage(missing) = %d, %v; want 0, nil", got, err)
	}
}

// TestSessionDiskQuota is security-review F8: a session whose files pass SessionMax is
// ended as ERROR within a check interval; one with a symbolic link to a huge file (and
// little else) is not.
func TestSessionDiskQuota(t *testing.T) {
	huge, _ := hugeOutside(t)
	runDir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{RunDir: runDir}
		e := newEnv(t, 2, l, bb.ManagerConfig{Disk: bb.DiskConfig{SessionMax: 1 << 20, CheckInterval: 5 * time.Second}})
		if err := e.m.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		greedy := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		linker := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		b := l.Browsers()
		writeFile(t, filepath.Join(b[0].Dir(), "downloads", "big.bin"), 1<<20)
		writeFile(t, filepath.Join(b[1].Dir(), "profile", "small"), 1000)
		if err := os.Symlink(huge, filepath.Join(b[1].Dir(), "profile", "huge")); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		time.Sleep(5*time.Second + time.Millisecond)
		synctest.Wait()
		e.wantEnded(t, greedy.ID, bb.StatusError, start.Add(5*time.Second), "disk quota exceeded")
		e.wantStatus(t, linker.ID, bb.StatusRunning)
		if !b[0].Closed() || b[1].Closed() {
			t.Errorf("browsers closed: greedy %v, linker %v; want only the greedy one", b[0].Closed(), b[1].Closed())
		}
		if _, err := os.Lstat(huge); err != nil {
			t.Errorf("the link's target: %v", err)
		}
	})
}

// spoolPart is a session part that keeps a session's files in spool/<id>, as
// internal/artifacts keeps downloads and uploads.
type spoolPart struct {
	spool     string
	blobBytes *atomic.Int64
}

// spoolRun is a spoolPart's run: it tells the quota where its session's files are.
type spoolRun struct {
	bb.NopPartRun
	p  spoolPart
	id string
}

func (spoolPart) Check(context.Context, string, *bb.CreateSessionRequest) error { return nil }
func (p spoolPart) Prepare(_ context.Context, s *bb.Session, _ *bb.CreateSessionRequest, _ *bb.LaunchOptions) (bb.PartRun, error) {
	return &spoolRun{p: p, id: s.ID}, nil
}
func (r *spoolRun) SessionDirs() []string { return []string{filepath.Join(r.p.spool, r.id)} }
func (r *spoolRun) SessionBlobBytes(context.Context) (int64, error) {
	return r.p.blobBytes.Load(), nil
}

// TestSessionDiskQuotaSpool: the files parts keep for a session (artifacts' downloads
// and uploads) count toward its quota, with its browser's.
func TestSessionDiskQuotaSpool(t *testing.T) {
	runDir, spool := t.TempDir(), t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		l := &chrometest.Launcher{RunDir: runDir}
		blobs := new(atomic.Int64)
		e := newEnv(t, 2, l, bb.ManagerConfig{Parts: []bb.SessionPart{spoolPart{spool, blobs}}, Disk: bb.DiskConfig{SessionMax: 1 << 20}})
		if err := e.m.Reconcile(t.Context()); err != nil {
			t.Fatal(err)
		}
		s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
		writeFile(t, filepath.Join(l.Browsers()[0].Dir(), "profile", "half"), 600<<10)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		e.wantStatus(t, s.ID, bb.StatusRunning)
		writeFile(t, filepath.Join(spool, s.ID, "uploads", "a"), 200<<10)
		time.Sleep(5 * time.Second) // the default check interval
		synctest.Wait()
		e.wantStatus(t, s.ID, bb.StatusRunning)
		blobs.Store(300 << 10) // downloads copied to blobs count too
		time.Sleep(5 * time.Second)
		synctest.Wait()
		e.wantStatus(t, s.ID, bb.StatusError)
	})
}

// TestFreeDiskFloor: below the free-space floor creates answer 503 (retry) and
// DiskReady says why; above it they work again.
func TestFreeDiskFloor(t *testing.T) {
	var free atomic.Int64
	free.Store(500 << 20)
	rec := &obsRecorder{}
	e := newEnv(t, 2, nil, bb.ManagerConfig{Observer: rec, Disk: bb.DiskConfig{
		Free: func() (int64, int64, error) { return free.Load(), 100 << 30, nil }}})
	_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{})
	if bb.CodeOf(err) != bb.CodeUnavailable || !bb.RetryOf(err) || !errors.Is(err, bb.ErrLowDisk) {
		t.Fatalf("create with 500 MiB free = %v; want 503 ErrLowDisk, retry (floor 1 GiB)", err)
	}
	if ok, detail := e.m.DiskReady(); ok || detail != "This browserd node is low on disk space (500 MiB free, 1024 MiB needed). Try again later." {
		t.Errorf("DiskReady = %v, %q", ok, detail)
	}
	if e.l.Launched() != 0 {
		t.Errorf("%d browsers launched below the floor", e.l.Launched())
	}
	free.Store(2 << 30)
	e.create(t, bb.CreateSessionRequest{})
	if ok, detail := e.m.DiskReady(); !ok || detail != "2048 MiB free" {
		t.Errorf("DiskReady = %v, %q; want ok, 2048 MiB free", ok, detail)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.refused) != 1 || rec.refused[0] != bb.RefusedCapacity {
		t.Errorf("refusals = %v; want [capacity]", rec.refused)
	}

	// A small disk's floor is 5% of it.
	small := newEnv(t, 2, nil, bb.ManagerConfig{Disk: bb.DiskConfig{
		Free: func() (int64, int64, error) { return 6 << 20, 100 << 20, nil }}})
	small.create(t, bb.CreateSessionRequest{})
}

// TestDiskUsageUnreadable: a directory the measurer can't read (the browser may chmod
// its own) is reported as fs.ErrPermission, for the watcher to fail closed. Root reads
// every directory, so the test needs another user.
func TestDiskUsageUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads unreadable directories")
	}
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "hidden", "big"), 1<<20)
	if err := os.Chmod(filepath.Join(root, "hidden"), 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(root, "hidden"), 0o700) })
	if _, err := bb.DiskUsage(root, -1); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("DiskUsage with an unreadable directory: %v; want fs.ErrPermission", err)
	}
}
