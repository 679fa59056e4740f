package browserd

import (
	"encoding/json"
	"strings"
)

// MetadataQuery is a parsed `q` filter of GET /v1/sessions (spec §5.8): the string at
// Path inside a session's userMetadata must equal Value.
type MetadataQuery struct {
	Path  []string
	Value string
}

// ParseMetadataQuery parses `user_metadata['k1']['k2']:'value'`. Keys and the value are
// quoted with ' or " and may escape the quote or a backslash with a backslash. Surrounding
// white space is ignored. Any other input is a CodeInvalid error.
func ParseMetadataQuery(q string) (*MetadataQuery, error) {
	const base = "user_metadata"
	bad := func(why string) error {
		return Errorf(CodeInvalid, "q is not a valid metadata query (%s); expected user_metadata['key']:'value'", why)
	}
	s := strings.TrimSpace(q)
	if !strings.HasPrefix(s, base) {
		return nil, bad("it must start with user_metadata")
	}
	s = s[len(base):]
	var mq MetadataQuery
	for strings.HasPrefix(s, "[") {
		key, rest, ok := parseQuoted(s[1:])
		if !ok {
			return nil, bad("a key must be a quoted string")
		}
		if !strings.HasPrefix(rest, "]") {
			return nil, bad("missing ]")
		}
		mq.Path = append(mq.Path, key)
		s = rest[1:]
	}
	if len(mq.Path) == 0 {
		return nil, bad("no ['key'] segment")
	}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, ":") {
		return nil, bad("missing : before the value")
	}
	val, rest, ok := parseQuoted(strings.TrimSpace(s[1:]))
	if !ok {
		return nil, bad("the value must be a quoted string")
	}
	if strings.TrimSpace(rest) != "" {
		return nil, bad("unexpected text after the value")
	}
	mq.Value = val
	return &mq, nil
}

// parseQuoted reads a '…' or "…" string at the start of s.
func parseQuoted(s string) (val, rest string, ok bool) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", "", false
	}
	quote := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == quote || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == quote:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// Match reports whether the JSON object metadata has the string Value at Path. Only
// strings match: numbers and booleans must be stored as strings to be queryable.
func (q *MetadataQuery) Match(metadata json.RawMessage) bool {
	if len(metadata) == 0 {
		return false
	}
	var cur any
	if err := json.Unmarshal(metadata, &cur); err != nil {
		return false
	}
	for _, k := range q.Path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = obj[k]; !ok {
			return false
		}
	}
	s, ok := cur.(string)
	return ok && s == q.Value
}
