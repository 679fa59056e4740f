package storetest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// testSessionsMetadata checks the metadata query of Sessions (spec §5.8): only a string
// at the exact path matches, whatever characters the keys contain.
func testSessionsMetadata(t *testing.T, st bb.Store) {
	p, other := newProject(t, st, bigLimit), newProject(t, st, bigLimit)
	node := "node-" + bb.NewID()
	n := 0
	mk := func(p *bb.Project, status bb.SessionStatus, metadata string) *bb.Session {
		n++
		s := newSession(p, base.Add(time.Duration(n)*time.Second))
		s.Status, s.NodeID = status, node
		if metadata != "" {
			s.UserMetadata = json.RawMessage(metadata)
		}
		return createSession(t, st, s)
	}
	staging := mk(p, bb.StatusRunning, `{"env":"staging"}`)
	production := mk(p, bb.StatusRunning, `{"env":"production"}`)
	team := mk(p, bb.StatusCompleted, `{"env":"staging","team":{"name":"core","size":"3"}}`)
	dots := mk(p, bb.StatusRunning, `{"a.b":"dot","a":{"b":"nested"}}`)
	odd := mk(p, bb.StatusRunning, `{"it's":"q1","say \"hi\"":"q2","[x]":"br","$":"dollar","back\\slash":"bs","ünï":"uni","":"empty","a'b\"c.d[0]":"mix"}`)
	typed := mk(p, bb.StatusRunning, `{"num":1,"bool":true,"nil":null,"obj":{"k":"v"},"arr":["v"],"numstr":"1","float":1.5}`)
	mk(p, bb.StatusRunning, "") // no metadata
	upper := mk(p, bb.StatusRunning, `{"env":"STAGING"}`)
	escaped := mk(p, bb.StatusRunning, `{"\u006bey":"x","esc":"\u0041\u00e9\n\"","sp ace":" v "}`)
	deep := mk(p, bb.StatusRunning, `{"l1":{"l2":{"l3":"deep"}}}`)
	// Duplicate keys: the last one wins, as in bb.MetadataQuery.Match.
	dup := mk(p, bb.StatusRunning, `{"d":"first","d":"second"}`)
	mk(other, bb.StatusRunning, `{"env":"staging"}`) // another project's

	q := func(value string, path ...string) *bb.MetadataQuery {
		return &bb.MetadataQuery{Path: path, Value: value}
	}
	long := make([]string, 40) // deeper than any store's SQL join limit
	for i := range long {
		long[i] = "k"
	}
	tests := []struct {
		name     string
		q        *bb.MetadataQuery
		status   bb.SessionStatus
		liveOnly bool
		want     []*bb.Session
	}{
		{name: "top-level key", q: q("staging", "env"), want: []*bb.Session{team, staging}},
		{name: "other value", q: q("production", "env"), want: []*bb.Session{production}},
		{name: "case-sensitive value", q: q("STAGING", "env"), want: []*bb.Session{upper}},
		{name: "with status", q: q("staging", "env"), status: bb.StatusRunning, want: []*bb.Session{staging}},
		{name: "live only", q: q("staging", "env"), liveOnly: true, want: []*bb.Session{staging}},
		{name: "nested key", q: q("core", "team", "name"), want: []*bb.Session{team}},
		{name: "nested numeric string", q: q("3", "team", "size"), want: []*bb.Session{team}},
		{name: "object value", q: q(`{"name":"core","size":"3"}`, "team"), want: nil},
		{name: "path through a string", q: q("staging", "env", "x"), want: nil},
		{name: "dotted key", q: q("dot", "a.b"), want: []*bb.Session{dots}},
		{name: "nested not dotted", q: q("nested", "a", "b"), want: []*bb.Session{dots}},
		{name: "dotted key is not a path", q: q("nested", "a.b"), want: nil},
		{name: "single quote in key", q: q("q1", "it's"), want: []*bb.Session{odd}},
		{name: "double quotes in key", q: q("q2", `say "hi"`), want: []*bb.Session{odd}},
		{name: "brackets in key", q: q("br", "[x]"), want: []*bb.Session{odd}},
		{name: "dollar key", q: q("dollar", "$"), want: []*bb.Session{odd}},
		{name: "backslash in key", q: q("bs", `back\slash`), want: []*bb.Session{odd}},
		{name: "non-ASCII key", q: q("uni", "ünï"), want: []*bb.Session{odd}},
		{name: "empty key", q: q("empty", ""), want: []*bb.Session{odd}},
		{name: "every special character", q: q("mix", `a'b"c.d[0]`), want: []*bb.Session{odd}},
		{name: "number is not a string", q: q("1", "num"), want: nil},
		{name: "float is not a string", q: q("1.5", "float"), want: nil},
		{name: "bool is not a string", q: q("true", "bool"), want: nil},
		{name: "null is not a string", q: q("null", "nil"), want: nil},
		{name: "null is not empty", q: q("", "nil"), want: nil},
		{name: "array is not traversed", q: q("v", "arr", "0"), want: nil},
		{name: "string holding a number", q: q("1", "numstr"), want: []*bb.Session{typed}},
		{name: "escaped key", q: q("x", "key"), want: []*bb.Session{escaped}},
		{name: "escaped value", q: q("A\u00e9\n\"", "esc"), want: []*bb.Session{escaped}},
		{name: "spaces kept", q: q(" v ", "sp ace"), want: []*bb.Session{escaped}},
		{name: "spaces not trimmed", q: q("v", "sp ace"), want: nil},
		{name: "three levels", q: q("deep", "l1", "l2", "l3"), want: []*bb.Session{deep}},
		{name: "prefix of a path", q: q("deep", "l1", "l2"), want: nil},
		{name: "missing key", q: q("staging", "nope"), want: nil},
		{name: "duplicate key, last wins", q: q("second", "d"), want: []*bb.Session{dup}},
		{name: "duplicate key, first loses", q: q("first", "d"), want: nil},
		{name: "very long path", q: q("v", long...), want: nil},
		{name: "SQL in value", q: q("' OR 1=1 --", "env"), want: nil},
		{name: "SQL in key", q: q("staging", `env') OR 1=1 --`), want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := bb.SessionFilter{ProjectID: p.ID, Metadata: tt.q, Status: tt.status, LiveOnly: tt.liveOnly}
			got, err := st.Sessions(t.Context(), f)
			if err != nil {
				t.Fatalf("Sessions: %v", err)
			}
			if diff := cmp.Diff(ids(tt.want), ids(got)); diff != "" {
				t.Errorf("Sessions(q=%q:%q) ids (-want +got):\n%s", strings.Join(tt.q.Path, "/"), tt.q.Value, diff)
			}
			// The store must agree with the reference semantics.
			for _, s := range got {
				if !tt.q.Match(s.UserMetadata) {
					t.Errorf("Sessions returned %s (metadata %s), which Match rejects", s.ID, s.UserMetadata)
				}
			}
		})
	}

	// Parsed queries, as the HTTP layer builds them.
	parsed, err := bb.ParseMetadataQuery(`user_metadata['team']['name']:'core'`)
	if err != nil {
		t.Fatalf("ParseMetadataQuery: %v", err)
	}
	got, err := st.Sessions(t.Context(), bb.SessionFilter{ProjectID: p.ID, Metadata: parsed})
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	if diff := cmp.Diff(ids([]*bb.Session{team}), ids(got)); diff != "" {
		t.Errorf("Sessions(parsed query) ids (-want +got):\n%s", diff)
	}
}
