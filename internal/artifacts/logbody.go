package artifacts

import (
	"bytes"
	"encoding/json"
)

// This file reads what a log row needs of a CDP message — the params or result and
// the frame and loader ids in it — without decoding the message: a walk over the top
// level of the JSON text that slices values out of it. It gives what decoding with
// encoding/json gave (a map of raw values, then a struct; fuzzed against that in
// logbody_test.go), at a fraction of the CPU and without allocations.

// logBody returns the field member ("params" or "result") of the JSON object msg;
// for "result", an "error" member instead, as {"error":…}. When msg is not a JSON
// object, or the member is missing or not an object, it is {}. Of repeated names the
// last counts, as when decoding into a map.
func logBody(msg []byte, field string) json.RawMessage {
	if !json.Valid(msg) {
		return json.RawMessage(`{}`)
	}
	var body, errVal []byte
	eachMember(msg, func(key, val []byte) {
		switch {
		case keyIs(key, field):
			body = val
		case field == "result" && keyIs(key, "error"):
			errVal = val
		}
	})
	if errVal != nil {
		body = append(append([]byte(`{"error":`), errVal...), '}')
	}
	if len(body) == 0 || body[0] != '{' {
		return json.RawMessage(`{}`)
	}
	return body
}

// bodyFrameIDs returns the frameId and loaderId members of a body as decoding it into
// frameIDs with encoding/json does: names match regardless of case, the last match
// counts, and values that are not strings are ignored (null included).
func bodyFrameIDs(body []byte) frameIDs {
	var ids frameIDs
	eachMember(body, func(key, val []byte) {
		var dst *string
		switch {
		case foldKeyIs(key, "frameId"):
			dst = &ids.FrameID
		case foldKeyIs(key, "loaderId"):
			dst = &ids.LoaderID
		default:
			return
		}
		if len(val) > 0 && val[0] == '"' {
			*dst = jsonString(val)
		}
	})
	return ids
}

// eachMember calls f with the name (a JSON string with its quotes) and the value of
// each member of the JSON object obj, in order. obj must be valid JSON; when it is not
// an object, f is not called.
func eachMember(obj []byte, f func(key, val []byte)) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		k := skipString(obj, i)
		key := obj[i:k]
		v := skipSpace(obj, skipSpace(obj, k)+1) // past the colon
		e := skipValue(obj, v)
		f(key, obj[v:e])
		i = skipSpace(obj, e)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the valid JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}

// plainString reports whether the JSON string s (with its quotes) has neither escapes
// nor bytes outside ASCII, so that its text is what lies between the quotes.
func plainString(s []byte) bool {
	for _, c := range s[1 : len(s)-1] {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// jsonString decodes the valid JSON string s (with its quotes).
func jsonString(s []byte) string {
	if plainString(s) {
		return string(s[1 : len(s)-1])
	}
	var v string
	_ = json.Unmarshal(s, &v) // s is a valid JSON string
	return v
}

// keyIs reports whether the member name key (a JSON string) is name exactly.
func keyIs(key []byte, name string) bool {
	if plainString(key) {
		return string(key[1:len(key)-1]) == name
	}
	return jsonString(key) == name
}

// foldKeyIs reports whether the member name key matches name as encoding/json matches
// a struct field's name: exactly or under Unicode case folding.
func foldKeyIs(key []byte, name string) bool {
	if plainString(key) {
		return bytes.EqualFold(key[1:len(key)-1], []byte(name))
	}
	return bytes.EqualFold([]byte(jsonString(key)), []byte(name))
}
