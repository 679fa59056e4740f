package profiles_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/profiles"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// TestProjectDiskQuota: an extension upload that would take the project's storage past
// ProjectMax is refused with 413; other projects are not affected.
func TestProjectDiskQuota(t *testing.T) {
	data := extensionZip(t, minimalExtension)
	limit := int64(len(data))*2 + 10
	e := newEnv(t, nil, profiles.Config{ProjectMax: limit})
	ctx := context.Background()
	for i := range 2 {
		if _, err := e.svc.CreateExtension(ctx, e.p.ID, "x.zip", bytes.NewReader(data)); err != nil {
			t.Fatalf("extension %d: %v", i, err)
		}
	}
	_, err := e.svc.CreateExtension(ctx, e.p.ID, "x.zip", bytes.NewReader(data))
	if bb.CodeOf(err) != bb.CodeTooLarge || !bb.NoRetryOf(err) {
		t.Fatalf("third extension = %v; want 413, no retry", err)
	}
	other, _ := sqlitetest.Project(t, e.db, 5)
	if _, err := e.svc.CreateExtension(ctx, other.ID, "x.zip", bytes.NewReader(data)); err != nil {
		t.Errorf("another project's extension: %v", err)
	}
}

// profileLauncher launches fake browsers that keep a profile directory, so that
// contexts can be written back from them.
type profileLauncher struct{ *chrometest.Launcher }

func (l profileLauncher) Launch(ctx context.Context, opts bb.LaunchOptions) (bb.Browser, error) {
	b, err := l.Launcher.Launch(ctx, opts)
	if err != nil {
		return nil, err
	}
	return profileBrowser{b.(*chrometest.Browser)}, nil
}

type profileBrowser struct{ *chrometest.Browser }

func (b profileBrowser) Stop(context.Context) error { return nil }
func (b profileBrowser) ProfileDir() string         { return filepath.Join(b.Dir(), "profile") }

// TestContextDiskQuota: a context write-back that would take the project past
// ProjectMax, or whose profile passed SessionMax, is dropped; the earlier snapshot
// stays.
func TestContextDiskQuota(t *testing.T) {
	tests := []struct {
		name    string
		cfg     profiles.Config
		profile int // bytes of random data in the profile
		saved   bool
	}{
		{name: "within the quotas", cfg: profiles.Config{ProjectMax: 1 << 20}, profile: 100 << 10, saved: true},
		{name: "over the project quota", cfg: profiles.Config{ProjectMax: 64 << 10}, profile: 100 << 10},
		{name: "profile over the session quota", cfg: profiles.Config{SessionMax: 64 << 10}, profile: 100 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &chrometest.Launcher{RunDir: t.TempDir()}
			e := newEnv(t, profileLauncher{l}, tt.cfg)
			c, _, err := e.svc.CreateContext(t.Context(), e.p.ID, bb.CreateContextRequest{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{KeepAlive: true,
				Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: c.ID, Persist: true}}})
			if err != nil {
				t.Fatal(err)
			}
			b := l.Browsers()[0]
			data := make([]byte, tt.profile)
			rand.Read(data)
			if err := os.MkdirAll(filepath.Join(b.Dir(), "profile"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(b.Dir(), "profile", "Cache"), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
				t.Fatal(err)
			}
			waitFor(t, b.Closed) // after the write-back
			got, err := e.db.Context(t.Context(), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if saved := got.Snapshot != ""; saved != tt.saved {
				t.Errorf("context snapshot %q (size %d); want saved = %v", got.Snapshot, got.SnapshotSize, tt.saved)
			}
		})
	}
}
