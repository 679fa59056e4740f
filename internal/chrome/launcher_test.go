package chrome

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

func TestArgs(t *testing.T) {
	l := &Launcher{extraArgs: []string{"--lang=de", "--disable-features=Foo"}}
	got := l.args("/run/s1/profile", bb.LaunchOptions{
		SessionID: "s1",
		Viewport:  bb.Viewport{Width: 1024, Height: 768},
		Args:      []string{"--proxy-server=http://p:1", "--no-sandbox", "--disable-features=Bar,"},
	})
	want := []string{
		"--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--remote-debugging-port=9222", "--remote-debugging-address=127.0.0.1",
		"--user-data-dir=/run/s1/profile", "--password-store=basic", "--disable-infobars",
		"--proxy-server=http://127.0.0.1:3128", "--proxy-bypass-list=<-loopback>",
	}
	// A caller's proxy and sandbox flags are dropped: the sandbox decides those.
	want = append(want,
		"--window-size=1024,855",
		"--lang=de",
		"--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup,SpareRendererForSitePerProcess,Foo,Bar",
		"about:blank",
	)
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("args (-got +want):\n%s", diff)
	}

	got = l.args("/p", bb.LaunchOptions{Viewport: bb.Viewport{Width: 800}})
	if slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, "--window-size") }) {
		t.Errorf("half a viewport gave a window size: %q", got)
	}
}

func TestFindChrome(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "chrome")
	noexec := filepath.Join(dir, "plain")
	for _, f := range []struct {
		path string
		mode fs.FileMode
	}{{exe, 0o755}, {noexec, 0o644}} {
		if err := os.WriteFile(f.path, []byte("#!/bin/sh\n"), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, in string
		want     string
		wantErr  bool
	}{
		{name: "executable", in: exe, want: exe},
		{name: "not executable", in: noexec, wantErr: true},
		{name: "missing", in: filepath.Join(dir, "missing"), wantErr: true},
		{name: "directory", in: dir, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindChrome(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("FindChrome(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestUnwrapDebian(t *testing.T) {
	if _, err := os.Stat(debianBinary); err != nil {
		t.Skipf("no %s: %v", debianBinary, err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "chromium")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec /usr/lib/chromium/chromium \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "my-chrome")
	if err := os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{script: debianBinary, other: other, debianBinary: debianBinary} {
		if got := unwrapDebian(in); got != want {
			t.Errorf("unwrapDebian(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Config{Path: "/bin/true"}); err == nil {
		t.Error("New without RunDir: no error")
	}
	_, err := New(Config{Path: filepath.Join(t.TempDir(), "nope"), RunDir: t.TempDir()})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("New with a missing binary = %v; want fs.ErrNotExist", err)
	}
}

func TestLaunchInvalidSessionID(t *testing.T) {
	runDir := t.TempDir()
	l, err := New(Config{Path: "/bin/true", RunDir: runDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeLauncher(t, l) })
	runDir = l.RunDir() // as root, the browsers' own copy of it (runDirFor)
	for _, id := range []string{"", ".", "..", "a/b", "../x", "a\x00b"} {
		if b, err := l.Launch(t.Context(), bb.LaunchOptions{SessionID: id}); err == nil {
			t.Errorf("Launch(%q) = %v, nil; want an error", id, b)
			b.Close(context.Background()) // cleanup of an unexpected success; the test failed anyway
		}
	}
	if entries, _ := os.ReadDir(runDir); len(entries) != 0 {
		t.Errorf("run dir has %d entries", len(entries))
	}
}

// closeLauncher closes l and checks that it removed its copy of the sandbox init and
// its own run dir under the sandbox root, if it had them.
func closeLauncher(t *testing.T, l *Launcher) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Errorf("close launcher: %v", err)
	}
	var left []string
	if l.sandbox.initCopy {
		left = append(left, l.sandbox.init)
	}
	if l.sandbox.ownRunDir != "" {
		left = append(left, l.sandbox.ownRunDir)
	}
	for _, p := range left {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind (stat: %v)", p, err)
		}
	}
}
