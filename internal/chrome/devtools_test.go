package chrome

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestParseDevToolsLine(t *testing.T) {
	const ws = "ws://127.0.0.1:40321/devtools/browser/4d37fc89-1745-40fc-8d15-64e134402ae3"
	tests := []struct {
		name, in string
		want     string
		wantOK   bool
	}{
		{name: "chromium", in: "DevTools listening on " + ws, want: ws, wantOK: true},
		{name: "carriage return", in: "DevTools listening on " + ws + "\r", want: ws, wantOK: true},
		{name: "ipv6", in: "DevTools listening on ws://[::1]:9222/devtools/browser/x", want: "ws://[::1]:9222/devtools/browser/x", wantOK: true},
		{name: "other line", in: "[1:1:ERROR:bus.cc(407)] Failed to connect to the bus"},
		{name: "empty", in: ""},
		{name: "prefix only", in: "DevTools listening on "},
		{name: "log prefix", in: "[0:0] DevTools listening on " + ws},
		{name: "http", in: "DevTools listening on http://127.0.0.1:1/devtools/browser/x"},
		{name: "no port", in: "DevTools listening on ws://127.0.0.1/devtools/browser/x"},
		{name: "port zero", in: "DevTools listening on ws://127.0.0.1:0/devtools/browser/x"},
		{name: "port too big", in: "DevTools listening on ws://127.0.0.1:65536/devtools/browser/x"},
		{name: "page url", in: "DevTools listening on ws://127.0.0.1:1/devtools/page/x"},
		{name: "no id", in: "DevTools listening on ws://127.0.0.1:1/devtools/browser/"},
		{name: "query", in: "DevTools listening on ws://127.0.0.1:1/devtools/browser/x?a=b"},
		{name: "user", in: "DevTools listening on ws://u:p@127.0.0.1:1/devtools/browser/x"},
		{name: "trailing text", in: "DevTools listening on " + ws + " now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseDevToolsLine(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("parseDevToolsLine(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// FuzzParseDevToolsLine checks that any accepted line yields a usable browser URL: a ws
// URL with a valid port whose /json/list address can be built, stable when re-parsed.
func FuzzParseDevToolsLine(f *testing.F) {
	f.Add("DevTools listening on ws://127.0.0.1:40321/devtools/browser/4d37fc89-1745-40fc-8d15-64e134402ae3")
	f.Fuzz(func(t *testing.T, line string) {
		got, ok := parseDevToolsLine(line)
		if !ok {
			if got != "" {
				t.Fatalf("rejected line gave %q", got)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "ws" || u.Host == "" {
			t.Fatalf("accepted %q: url %q does not parse as ws: %v", line, got, err)
		}
		if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
			t.Fatalf("accepted %q: bad port %q", line, u.Port())
		}
		if strings.ContainsAny(got, " \t\r\n") {
			t.Fatalf("accepted %q: url %q has spaces", line, got)
		}
		if again, ok := parseDevToolsLine(devToolsPrefix + got); !ok || again != got {
			t.Fatalf("re-parse of %q = %q, %v", got, again, ok)
		}
	})
}
