package cdpproxy

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// unescape appends the decoded contents of a valid JSON string (without its quotes) to
// dst. Lone surrogates become U+FFFD, as in encoding/json.
func unescape(raw, dst []byte) []byte {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		if len(raw) < 2 {
			return dst // not valid JSON; cannot happen after a scan
		}
		switch c := raw[1]; c {
		case 'u':
			if len(raw) < 6 {
				return dst
			}
			r := rune(hex4(raw[2:6]))
			raw = raw[6:]
			if utf16.IsSurrogate(r) {
				if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
					if r2 := utf16.DecodeRune(r, rune(hex4(raw[2:6]))); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						raw = raw[6:]
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		default: // " \ /
			dst = append(dst, c)
		}
		raw = raw[2:]
	}
	return dst
}

func hex4(b []byte) uint16 {
	var n uint16
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		n = n<<4 | uint16(c)
	}
	return n
}

// responseID returns the id of a browser message that starts {"id":N — Chromium writes
// id first in responses; events start with "method".
func responseID(b []byte) (int64, bool) {
	const prefix = `{"id":`
	if !bytes.HasPrefix(b, []byte(prefix)) {
		return 0, false
	}
	var n int64
	i := len(prefix)
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i-start < 18; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == start || i >= len(b) || (b[i] != ',' && b[i] != '}') {
		return 0, false
	}
	return n, true
}
