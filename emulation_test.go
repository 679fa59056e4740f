package browserd_test

import (
	"encoding/json"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func TestEmulationFor(t *testing.T) {
	vp := bb.Viewport{Width: 1280, Height: 720}
	tests := []struct {
		name  string
		bs    bb.BrowserSettings
		given bool
		want  bb.Emulation
	}{
		{name: "nothing", want: bb.Emulation{}},
		{
			name: "allowed domains and certificates",
			bs:   bb.BrowserSettings{AllowedDomains: []string{" Example.COM.", "*.b.org", "example.com"}, IgnoreCertificateErrors: true},
			want: bb.Emulation{AllowedDomains: []string{"example.com", "b.org"}, IgnoreCertificateErrors: true},
		},
		{
			name: "stealth keeps linux",
			bs:   bb.BrowserSettings{Verified: true},
			want: bb.Emulation{Stealth: true, Profile: &bb.Profile{OS: "linux", Form: "desktop", Languages: []string{"en-US", "en"}, Screen: bb.Viewport{Width: 1920, Height: 1080}}},
		},
		{
			name: "mac",
			bs:   bb.BrowserSettings{OS: "mac"},
			want: bb.Emulation{Profile: &bb.Profile{OS: "mac", Form: "desktop", Languages: []string{"en-US", "en"}, Screen: bb.Viewport{Width: 1920, Height: 1080}}},
		},
		{
			name: "tablet with viewport", given: true,
			bs:   bb.BrowserSettings{OS: "tablet"},
			want: bb.Emulation{Profile: &bb.Profile{OS: "android", Form: "tablet", Languages: []string{"en-US", "en"}, Screen: vp, Viewport: vp}},
		},
		{
			name: "legacy fingerprint",
			bs: bb.BrowserSettings{Fingerprint: json.RawMessage(`{"browsers":["edge"],"devices":["desktop"],"httpVersion":"1",
				"locales":["fr-FR","en-GB"],"operatingSystems":["solaris","macos","windows"],"screen":{"maxWidth":1600,"minHeight":1200}}`)},
			want: bb.Emulation{Profile: &bb.Profile{OS: "mac", Form: "desktop", Edge: true, HTTP1: true,
				Languages: []string{"fr-FR", "en-GB", "fr"}, Screen: bb.Viewport{Width: 1600, Height: 1200}}},
		},
		{
			name: "legacy mobile only",
			bs:   bb.BrowserSettings{Fingerprint: json.RawMessage(`{"devices":["mobile"],"operatingSystems":["ios"],"httpVersion":2}`)},
			want: bb.Emulation{Profile: &bb.Profile{OS: "android", Form: "mobile", Languages: []string{"en-US", "en"},
				Screen: bb.Viewport{Width: 412, Height: 915}, Viewport: bb.Viewport{Width: 412, Height: 915}}},
		},
		{
			name: "os wins over fingerprint; big window, big screen",
			bs:   bb.BrowserSettings{OS: "windows", Fingerprint: json.RawMessage(`{"operatingSystems":["linux"]}`)},
			want: bb.Emulation{Profile: &bb.Profile{OS: "windows", Form: "desktop", Languages: []string{"en-US", "en"}, Screen: bb.Viewport{Width: 1920, Height: 1080}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bb.EmulationFor(tt.bs, vp, tt.given)
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("EmulationFor (-got +want):\n%s", diff)
			}
		})
	}
	if got := bb.EmulationFor(bb.BrowserSettings{OS: "linux"}, bb.Viewport{Width: 2560, Height: 1440}, true).Profile.Screen; got != (bb.Viewport{Width: 2560, Height: 1440}) {
		t.Errorf("screen %v for a 2560×1440 window; want at least the window", got)
	}
}

func TestProfileStrings(t *testing.T) {
	const v = "156.0.8078.108"
	edge := &bb.Profile{OS: "windows", Form: "desktop", Edge: true, Languages: []string{"en-US", "en"}}
	if got, want := edge.UserAgent(v), "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0"; got != want {
		t.Errorf("UserAgent = %q; want %q", got, want)
	}
	m := edge.Metadata(v)
	if m.Platform != "Windows" || m.Brands[1].Brand != "Microsoft Edge" || m.FullVersionList[0].Version != v || m.Mobile {
		t.Errorf("Metadata = %+v", m)
	}
	tablet := &bb.Profile{OS: "android", Form: "tablet", Languages: []string{"en-US"}}
	if got := tablet.UserAgent(v); got != "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36" {
		t.Errorf("tablet UserAgent = %q", got)
	}
	if m := tablet.Metadata(v); m.Model != "Pixel Tablet" || m.Mobile || !tablet.Touch() {
		t.Errorf("tablet metadata %+v touch %v", m, tablet.Touch())
	}
	e := bb.Emulation{Profile: edge, IgnoreCertificateErrors: true}
	got := e.LaunchArgs(v)
	want := []string{"--ignore-certificate-errors", "--disable-blink-features=AutomationControlled",
		"--user-agent=" + edge.UserAgent(v), "--accept-lang=en-US,en", "--screen-info={0x0}"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("LaunchArgs (-got +want):\n%s", diff)
	}
	if got := (bb.Emulation{}).LaunchArgs(v); got != nil {
		t.Errorf("LaunchArgs of nothing = %q; want none (the warm pool's options)", got)
	}
}

func TestDomainAllowed(t *testing.T) {
	e := bb.Emulation{AllowedDomains: []string{"example.com", "b.org"}}
	for host, want := range map[string]bool{
		"example.com": true, "a.b.example.com": true, "EXAMPLE.com.": true, "notexample.com": false,
		"example.com.evil.net": false, "b.org": true, "x.b.org": true, "org": false, "": false,
	} {
		if got := e.DomainAllowed(host); got != want {
			t.Errorf("DomainAllowed(%q) = %v; want %v", host, got, want)
		}
	}
	if !(bb.Emulation{}).DomainAllowed("anything") {
		t.Error("no allowedDomains refuses a host")
	}
}
