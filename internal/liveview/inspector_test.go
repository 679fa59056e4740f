package liveview

import (
	"net/url"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
)

func TestParseLogQuery(t *testing.T) {
	tests := []struct {
		in        string
		after     int64
		limit     int
		wantError bool
	}{
		{in: "", after: 0, limit: defaultLogPage},
		{in: "after=42&limit=7", after: 42, limit: 7},
		{in: "limit=5000", limit: 5000},
		{in: "after=-1", wantError: true},
		{in: "after=x", wantError: true},
		{in: "limit=0", wantError: true},
		{in: "limit=5001", wantError: true},
		{in: "limit=1e3", wantError: true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.in)
		after, limit, err := parseLogQuery(q)
		if (err != nil) != tt.wantError || (err == nil && (after != tt.after || limit != tt.limit)) {
			t.Errorf("parseLogQuery(%q) = %d, %d, %v; want %d, %d, error %v", tt.in, after, limit, err, tt.after, tt.limit, tt.wantError)
		}
		if err != nil && bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("parseLogQuery(%q) error %v is not CodeInvalid", tt.in, err)
		}
	}
}

func FuzzParseLogQuery(f *testing.F) {
	f.Add("after=1&limit=2")
	f.Add("after=99999999999999999999")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		after, limit, err := parseLogQuery(q)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeInvalid {
				t.Fatalf("error %v is not CodeInvalid", err)
			}
			return
		}
		if after < 0 || limit < 1 || limit > maxLogPage {
			t.Fatalf("parseLogQuery(%q) = %d, %d", raw, after, limit)
		}
	})
}

func TestRelativePlaylist(t *testing.T) {
	in := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nhttp://h:1/v1/sessions/S/replays/0/seg-00000.ts\n#EXTINF:1.5,\r\nhttp://h:1/v1/sessions/S/replays/0/seg-00001.ts\r\n#EXT-X-ENDLIST\n"
	got, err := relativePlaylist(in, "0")
	if err != nil {
		t.Fatal(err)
	}
	want := "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n0/seg-00000.ts\n#EXTINF:1.5,\n0/seg-00001.ts\n#EXT-X-ENDLIST\n"
	if string(got) != want {
		t.Errorf("relativePlaylist = %q, want %q", got, want)
	}
	for _, bad := range []string{"#EXTM3U\nhttp://h/\n", "#EXTM3U\n%zz\n"} {
		if _, err := relativePlaylist(bad, "0"); err == nil {
			t.Errorf("relativePlaylist(%q) took it", bad)
		}
	}
}

func FuzzRelativePlaylist(f *testing.F) {
	f.Add("#EXTM3U\n#EXTINF:2,\nhttp://h/v1/sessions/S/replays/0/a.ts\n", "0")
	f.Add("x/../..\n", "1/2")
	f.Fuzz(func(t *testing.T, pl, page string) {
		out, err := relativePlaylist(pl, page)
		if err != nil {
			return
		}
		prefix := url.PathEscape(page) + "/"
		for line := range strings.Lines(string(out)) {
			l := strings.TrimSuffix(line, "\n")
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			seg, ok := strings.CutPrefix(l, prefix)
			if !ok || seg == "" || strings.Contains(seg, "/") || seg == "." || seg == ".." {
				t.Fatalf("line %q escapes the page's path", l)
			}
		}
	})
}
