package replays

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// ParsePageID reads a page id of the API: decimal digits without a sign or a leading
// zero ("0", "1", … "9999"). Nothing else is a page: a client's pageId never reaches a
// blob key or ffmpeg's command line other than as this number.
func ParsePageID(s string) (int, bool) {
	if s == "" || len(s) > 4 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// ValidSegmentName reports whether name is a segment name as the encoder makes them:
// "seg" and five digits, ".ts". Served segments must also be listed in the playlist.
func ValidSegmentName(name string) bool {
	if len(name) != len("seg00000.ts") || !strings.HasPrefix(name, "seg") || !strings.HasSuffix(name, ".ts") {
		return false
	}
	for _, c := range name[3:8] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// maxSegments bounds the segments of one playlist (a 6 h page in 4 s segments is 5400).
const maxSegments = 20000

// PlaylistSegments returns the segment URIs of an HLS media playlist made by the
// encoder, in order: every line that is neither empty nor a tag (#…). Each must be a
// ValidSegmentName; anything else is an error, as is a playlist without #EXTM3U first.
func PlaylistSegments(pl []byte) ([]string, error) {
	var segs []string
	first := true
	for line := range bytes.Lines(pl) {
		l := strings.TrimRight(string(line), "\r\n")
		if first {
			if l != "#EXTM3U" {
				return nil, errors.New("playlist: no #EXTM3U header")
			}
			first = false
			continue
		}
		if l == "" || l[0] == '#' {
			continue
		}
		if !ValidSegmentName(l) {
			return nil, errors.New("playlist: unexpected segment URI " + strconv.Quote(truncate(l)))
		}
		if len(segs) == maxSegments {
			return nil, errors.New("playlist: too many segments")
		}
		segs = append(segs, l)
	}
	if first {
		return nil, errors.New("playlist: empty")
	}
	return segs, nil
}

// RewritePlaylist returns pl with each segment URI made base + the segment's name, so
// that the playlist works from wherever it is fetched (its own URL, …/replays/{pageId},
// has no slash after the page id for a relative name to resolve under). It checks pl as
// PlaylistSegments does; tags pass unchanged.
func RewritePlaylist(pl []byte, base string) ([]byte, error) {
	if _, err := PlaylistSegments(pl); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for line := range bytes.Lines(pl) {
		l := strings.TrimRight(string(line), "\r\n")
		if l != "" && l[0] != '#' {
			l = base + l
		}
		out.WriteString(l)
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// frameKeyName is the name of a stored frame: its sequence number and its wall-clock
// time in Unix milliseconds, zero-padded so that the keys sort in order.
func frameKeyName(seq int, ms int64) string {
	return pad(strconv.Itoa(seq), 8) + "-" + pad(strconv.FormatInt(ms, 10), 13) + ".jpg"
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

// parseFrameKeyName reads a name made by frameKeyName.
func parseFrameKeyName(name string) (seq int, ms int64, ok bool) {
	base, found := strings.CutSuffix(name, ".jpg")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(base, "-")
	if !found || len(a) != 8 || len(b) != 13 {
		return 0, 0, false
	}
	n, err1 := strconv.ParseUint(a, 10, 31)
	t, err2 := strconv.ParseUint(b, 10, 63)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return int(n), int64(t), true
}
