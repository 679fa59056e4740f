package cdpproxy

import (
	"bytes"
	"strconv"
)

// command is what the gateway reads of a client's CDP command without decoding it:
// the top-level id, method and sessionId.
type command struct {
	id        int64
	hasID     bool
	method    []byte // raw JSON string contents (CDP names need no escapes)
	sessionID []byte
}

// scanCommand reads the top-level members of a JSON object, skipping the values it does
// not need (params) without allocating. ok is false for anything that is not an object.
func scanCommand(b []byte) (cmd command, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return cmd, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return cmd, true
	}
	for i < len(b) {
		if b[i] != '"' {
			return cmd, false
		}
		end := skipString(b, i)
		if end < 0 {
			return cmd, false
		}
		key := b[i+1 : end-1]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return cmd, false
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return cmd, false
		}
		val := b[i:vend]
		switch string(key) { // no allocation: the compiler special-cases this conversion
		case "id":
			if n, err := strconv.ParseInt(string(val), 10, 64); err == nil {
				cmd.id, cmd.hasID = n, true
			}
		case "method":
			if len(val) >= 2 && val[0] == '"' {
				cmd.method = val[1 : len(val)-1]
			}
		case "sessionId":
			if len(val) >= 2 && val[0] == '"' {
				cmd.sessionID = val[1 : len(val)-1]
			}
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return cmd, false
		}
		if b[i] == '}' {
			return cmd, true
		}
		if b[i] != ',' {
			return cmd, false
		}
		i = skipSpace(b, i+1)
	}
	return cmd, false
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

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i] ('"'), or -1.
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		j += i
		// The quote ends the string unless an odd number of backslashes precede it.
		k := j - 1
		for k >= i && b[k] == '\\' {
			k--
		}
		if (j-1-k)%2 == 0 {
			return j + 1
		}
		i = j + 1
	}
}

// skipValue returns the index after the JSON value that starts at b[i], or -1. It
// checks structure (nesting, strings) but not the spelling of literals and numbers.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
