package chrome

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

func TestPrepareProfile(t *testing.T) {
	ext := t.TempDir()
	if err := os.WriteFile(filepath.Join(ext, "manifest.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("empty", func(t *testing.T) {
		udd := filepath.Join(t.TempDir(), "profile")
		if err := prepareProfile(udd, bb.LaunchOptions{Extensions: []string{ext}}); err != nil {
			t.Fatal(err)
		}
		if entries, err := os.ReadDir(udd); err != nil || len(entries) != 0 {
			t.Errorf("profile = %v, %v; want an empty dir", entries, err)
		}
	})
	t.Run("moved into place", func(t *testing.T) {
		seed := filepath.Join(t.TempDir(), "seed")
		if err := os.MkdirAll(filepath.Join(seed, "Default"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(seed, "Default", "Cookies"), []byte("c"), 0o600)
		udd := filepath.Join(t.TempDir(), "profile")
		if err := prepareProfile(udd, bb.LaunchOptions{Profile: seed}); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(udd, "Default", "Cookies")); err != nil || string(b) != "c" {
			t.Errorf("Cookies = %q, %v", b, err)
		}
	})
	t.Run("copied", func(t *testing.T) {
		seed := t.TempDir()
		os.MkdirAll(filepath.Join(seed, "Default", "IndexedDB"), 0o700)
		os.WriteFile(filepath.Join(seed, "Default", "IndexedDB", "x"), []byte("idb"), 0o600)
		os.Symlink("/etc/passwd", filepath.Join(seed, "SingletonLock"))
		udd := filepath.Join(t.TempDir(), "profile")
		if err := copyTree(seed, udd); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(udd, "Default", "IndexedDB", "x")); err != nil || string(b) != "idb" {
			t.Errorf("copied file = %q, %v", b, err)
		}
		if _, err := os.Lstat(filepath.Join(udd, "SingletonLock")); err == nil {
			t.Error("copyTree copied a symbolic link")
		}
	})
	for name, opts := range map[string]bb.LaunchOptions{
		"missing profile":       {Profile: filepath.Join(t.TempDir(), "nope")},
		"relative extension":    {Extensions: []string{"ext"}},
		"comma in extension":    {Extensions: []string{ext + ",/etc"}},
		"extension no manifest": {Extensions: []string{t.TempDir()}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := prepareProfile(filepath.Join(t.TempDir(), "profile"), opts); err == nil {
				t.Error("prepareProfile succeeded")
			}
		})
	}
}

func TestProfileArgs(t *testing.T) {
	got := profileArgs(bb.LaunchOptions{Profile: "/p", Extensions: []string{"/a", "/b"}})
	want := []string{"--restore-last-session", "--load-extension=/a,/b", "--disable-extensions-except=/a,/b"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("profileArgs (-want +got):\n%s", diff)
	}
	if got := profileArgs(bb.LaunchOptions{}); len(got) != 0 {
		t.Errorf("profileArgs(no profile, no extensions) = %q; want none", got)
	}
}

// TestStopKeepsProfile checks that Stop ends every process but keeps the profile,
// which Close then removes.
func TestStopKeepsProfile(t *testing.T) {
	path, err := FindChrome("")
	if err != nil {
		t.Skip(err)
	}
	l, err := New(Config{Path: path, RunDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLauncher(t, l) })
	b, err := l.launch(context.Background(), bb.LaunchOptions{SessionID: "stop"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer b.Close(ctx)
	if err := b.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-b.Exited():
	default:
		t.Error("the browser runs after Stop")
	}
	if groupAlive(b.PID()) {
		t.Error("processes of the browser's group run after Stop")
	}
	if _, err := os.Stat(filepath.Join(b.ProfileDir(), "Local State")); err != nil {
		t.Errorf("profile after Stop: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(b.Dir()); !os.IsNotExist(err) {
		t.Errorf("browser dir after Close: %v; want it gone", err)
	}
}
