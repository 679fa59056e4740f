package replays

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

func TestParsePageID(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "1": 1, "42": 42, "9999": 9999} {
		if n, ok := ParsePageID(s); !ok || n != want {
			t.Errorf("ParsePageID(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
	for _, s := range []string{"", "01", "-1", "+1", "1.0", "1e3", "0x1", "10000", " 1", "1 ", "../0", "0;rm -rf", "١"} {
		if n, ok := ParsePageID(s); ok {
			t.Errorf("ParsePageID(%q) = %d; want refused", s, n)
		}
	}
}

func TestValidSegmentName(t *testing.T) {
	for _, s := range []string{"seg00000.ts", "seg12345.ts"} {
		if !ValidSegmentName(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "seg0000.ts", "seg000000.ts", "seg0000a.ts", "../seg00000.ts", "seg00000.ts/", "index.m3u8", "SEG00000.ts", "seg00000.mp4", "seg-0000.ts"} {
		if ValidSegmentName(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

const samplePlaylist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:4.000000,\nseg00000.ts\n#EXTINF:1.500000,\nseg00001.ts\n#EXT-X-ENDLIST\n"

func TestRewritePlaylist(t *testing.T) {
	out, err := RewritePlaylist([]byte(samplePlaylist), "https://h/v1/sessions/s/replays/0/")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(samplePlaylist, "\nseg", "\nhttps://h/v1/sessions/s/replays/0/seg")
	if string(out) != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", out, want)
	}
	for _, bad := range []string{"", "seg00000.ts\n", "#EXTM3U\n../../pages.json\n", "#EXTM3U\nhttps://evil/seg00000.ts\n", "#EXTM3U\n/etc/passwd\n"} {
		if _, err := RewritePlaylist([]byte(bad), "b/"); err == nil {
			t.Errorf("playlist %q accepted", bad)
		}
	}
}

func TestFrameKeyName(t *testing.T) {
	name := frameKeyName(12, 1764921600123)
	if name != "00000012-1764921600123.jpg" {
		t.Errorf("frameKeyName = %q", name)
	}
	if seq, ms, ok := parseFrameKeyName(name); !ok || seq != 12 || ms != 1764921600123 {
		t.Errorf("parseFrameKeyName(%q) = %d, %d, %v", name, seq, ms, ok)
	}
	for _, bad := range []string{"", "x.jpg", "00000012-1764921600123.png", "0000012-1764921600123.jpg", "00000012_1764921600123.jpg", "-0000012-1764921600123.jpg"} {
		if _, _, ok := parseFrameKeyName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzPageID: whatever a client sends as pageId, an accepted one is plain digits that
// print back the same (nothing else reaches a blob key or a command line).
func FuzzPageID(f *testing.F) {
	for _, s := range []string{"0", "1", "01", "../x", "9999", "10000", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParsePageID(s)
		if !ok {
			return
		}
		if strconv.Itoa(n) != s || n < 0 || n > 9999 {
			t.Fatalf("ParsePageID(%q) = %d", s, n)
		}
	})
}

// FuzzSegmentName: an accepted segment name is a plain file name of the encoder's form.
func FuzzSegmentName(f *testing.F) {
	for _, s := range []string{"seg00000.ts", "../seg00000.ts", "seg0000/.ts"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidSegmentName(s) {
			return
		}
		if strings.ContainsAny(s, "/\\\x00") || strings.Contains(s, "..") || len(s) != 11 {
			t.Fatalf("ValidSegmentName(%q) accepted", s)
		}
	})
}

// FuzzPlaylist: a playlist that parses lists only valid segment names, and rewriting
// it prefixes exactly those lines and keeps every tag.
func FuzzPlaylist(f *testing.F) {
	f.Add([]byte(samplePlaylist))
	f.Add([]byte("#EXTM3U\r\nseg00000.ts\r\n"))
	f.Add([]byte("#EXTM3U\n../x\n"))
	f.Fuzz(func(t *testing.T, pl []byte) {
		segs, err := PlaylistSegments(pl)
		if err != nil {
			if _, err2 := RewritePlaylist(pl, "B/"); err2 == nil {
				t.Fatal("RewritePlaylist accepted what PlaylistSegments refused")
			}
			return
		}
		for _, s := range segs {
			if !ValidSegmentName(s) {
				t.Fatalf("segment %q listed", s)
			}
		}
		out, err := RewritePlaylist(pl, "B/")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for line := range bytes.Lines(out) {
			l := strings.TrimRight(string(line), "\n")
			if l != "" && l[0] != '#' {
				rest, ok := strings.CutPrefix(l, "B/")
				if !ok {
					t.Fatalf("line %q not rewritten", l)
				}
				got = append(got, rest)
			}
		}
		if strings.Join(got, ",") != strings.Join(segs, ",") {
			t.Fatalf("rewritten segments %v; want %v", got, segs)
		}
	})
}

// FuzzFrameKeyName: a name that parses is the one frameKeyName makes of its values.
func FuzzFrameKeyName(f *testing.F) {
	f.Add("00000012-1764921600123.jpg")
	f.Add("99999999-9999999999999.jpg")
	f.Fuzz(func(t *testing.T, s string) {
		seq, ms, ok := parseFrameKeyName(s)
		if ok && frameKeyName(seq, ms) != s {
			t.Fatalf("parseFrameKeyName(%q) = %d, %d, which print as %q", s, seq, ms, frameKeyName(seq, ms))
		}
	})
}
