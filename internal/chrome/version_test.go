package chrome_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/chrome"
)

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want, wantErr string
	}{
		{name: "version", path: script("ok", `echo " Chromium 156.0.8078.108 built on Debian 13.1"; echo second`), want: "Chromium 156.0.8078.108 built on Debian 13.1"},
		{name: "fails", path: script("fail", `echo "cannot open display" >&2; echo more >&2; exit 1`), wantErr: "exit status 1: cannot open display"},
		{name: "missing", path: filepath.Join(dir, "none"), wantErr: "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chrome.Version(t.Context(), tt.path)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Version = %q, %v; want %q, error with %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestVersionNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "Chromium 156.0.8078.108 built on Debian 13.1", want: "156.0.8078.108"},
		{in: "Google Chrome 131.0.6778.85 ", want: "131.0.6778.85"},
		{in: "Chromium 156.0", want: ""},
		{in: "", want: ""},
	}
	for _, tt := range tests {
		if got := chrome.VersionNumber(tt.in); got != tt.want {
			t.Errorf("VersionNumber(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
