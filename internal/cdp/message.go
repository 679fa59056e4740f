package cdp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Error is an error answered by the browser to a command, such as
// {"code":-32601,"message":"'Foo.bar' wasn't found"}.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error returns the code and message, as "cdp error -32601: 'Foo.bar' wasn't found".
func (e *Error) Error() string { return fmt.Sprintf("cdp error %d: %s", e.Code, e.Message) }

// Event is a CDP event. SessionID names the flattened target session it came from, ""
// for the browser's own.
type Event struct {
	SessionID string
	Method    string
	Params    json.RawMessage
}

// message is one message read from the browser: an answer (ID set) or an event.
type message struct {
	ID        int64           `json:"id"`
	SessionID string          `json:"sessionId"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	Result    json.RawMessage `json:"result"`
	Error     *Error          `json:"error"`
}

// errNotObject is the error of a message that is not a JSON object.
var errNotObject = errors.New("cdp: message is not a JSON object")

// decode decodes a message read from the browser. Its raw fields alias data.
//
// It walks only the top level of the object and leaves params and result unparsed:
// their owner decodes them anyway, and a full-page screenshot's answer is tens of MB of
// base64, which encoding/json would scan once more for nothing. Anything the walk does
// not expect (escaped keys, keys that differ from ours only in case, an id that is not
// a plain integer) goes to encoding/json, so that the outcome is always what
// json.Unmarshal would give for a valid message (FuzzDecode checks it).
func decode(data []byte) (message, error) {
	m, ok := decodeFast(data)
	if ok {
		return m, nil
	}
	m = message{}
	if err := json.Unmarshal(data, &m); err != nil {
		return message{}, err
	}
	return m, nil
}

// decodeFast is decode's walk; ok is false when encoding/json must decide.
func decodeFast(data []byte) (m message, ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return m, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return m, skipSpace(data, i+1) == len(data)
	}
	for {
		key, next, ok := plainString(data, i)
		if !ok {
			return m, false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return m, false
		}
		i = skipSpace(data, i+1)
		end, ok := skipValue(data, i, 0)
		if !ok {
			return m, false
		}
		v := data[i:end]
		switch string(key) {
		case "id":
			if v[0] == 'n' { // null leaves the field as it was
				break
			}
			id, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return m, false
			}
			m.ID = id
		case "sessionId", "method":
			s := &m.Method
			if key[0] == 's' {
				s = &m.SessionID
			}
			if v[0] == 'n' {
				break
			}
			str, _, ok := plainString(v, 0)
			if !ok {
				return m, false
			}
			*s = string(str)
		case "params":
			m.Params = json.RawMessage(v)
		case "result":
			m.Result = json.RawMessage(v)
		case "error":
			if v[0] == 'n' {
				m.Error = nil
				break
			}
			e := m.Error // a repeated key decodes into the same value, as encoding/json does
			if e == nil {
				e = new(Error)
			}
			if json.Unmarshal(v, e) != nil {
				return m, false
			}
			m.Error = e
		default:
			if foldsToField(key) {
				return m, false // encoding/json matches keys case-insensitively
			}
		}
		i = skipSpace(data, end)
		if i >= len(data) {
			return m, false
		}
		if data[i] == '}' {
			return m, skipSpace(data, i+1) == len(data)
		}
		if data[i] != ',' {
			return m, false
		}
		i = skipSpace(data, i+1)
	}
}

// foldsToField reports whether key is one of message's keys in another case.
func foldsToField(key []byte) bool {
	for _, f := range []string{"id", "sessionId", "method", "params", "result", "error"} {
		if bytes.EqualFold(key, []byte(f)) {
			return true
		}
	}
	return false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// plainString returns the contents of the string at data[i] when it has no escapes
// and no control characters, and the index after its closing quote.
func plainString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	end := bytes.IndexByte(data[i+1:], '"')
	if end < 0 {
		return nil, 0, false
	}
	s = data[i+1 : i+1+end]
	for _, c := range s {
		if c < ' ' || c == '\\' || c >= 0x80 { // escapes and non-ASCII: encoding/json's job
			return nil, 0, false
		}
	}
	return s, i + 2 + end, true
}

// maxDepth bounds the nesting skipValue follows, as encoding/json does (10000).
const maxDepth = 10000

// skipValue returns the index after the JSON value at data[i]. It checks the structure
// (brackets, strings, commas and colons), not the spelling of numbers and literals:
// the owner of params or result decodes them and finds any such error.
func skipValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) || depth > maxDepth {
		return 0, false
	}
	switch c := data[i]; c {
	case '"':
		return skipString(data, i)
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == closing {
			return i + 1, true
		}
		for {
			if c == '{' {
				next, ok := skipString(data, i)
				if !ok {
					return 0, false
				}
				i = skipSpace(data, next)
				if i >= len(data) || data[i] != ':' {
					return 0, false
				}
				i = skipSpace(data, i+1)
			}
			next, ok := skipValue(data, i, depth+1)
			if !ok {
				return 0, false
			}
			i = skipSpace(data, next)
			if i >= len(data) {
				return 0, false
			}
			if data[i] == closing {
				return i + 1, true
			}
			if data[i] != ',' {
				return 0, false
			}
			i = skipSpace(data, i+1)
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 't', 'f', 'n':
		j := i
		for j < len(data) && (data[j] == '-' || data[j] == '+' || data[j] == '.' ||
			(data[j] >= '0' && data[j] <= '9') || (data[j] >= 'a' && data[j] <= 'z') || (data[j] >= 'A' && data[j] <= 'Z')) {
			j++
		}
		v := data[i:j]
		if c == 't' || c == 'f' || c == 'n' {
			if string(v) != "true" && string(v) != "false" && string(v) != "null" {
				return 0, false
			}
		} else if !json.Valid(v) {
			return 0, false
		}
		return j, true
	}
	return 0, false
}

// skipString returns the index after the string at data[i]. Long strings (a
// screenshot's base64) are crossed with IndexByte.
func skipString(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return 0, false
	}
	i++
	for {
		q := bytes.IndexByte(data[i:], '"')
		if q < 0 {
			return 0, false
		}
		j := i + q
		// The quote ends the string unless an odd number of backslashes escape it.
		n := 0
		for k := j - 1; k >= i && data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, true
		}
		i = j + 1
	}
}
