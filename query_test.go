package browserd_test

import (
	"encoding/json"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func TestParseMetadataQuery(t *testing.T) {
	tests := []struct {
		name, in string
		want     *bb.MetadataQuery
	}{
		{name: "one key", in: `user_metadata['env']:'staging'`, want: &bb.MetadataQuery{Path: []string{"env"}, Value: "staging"}},
		{name: "nested keys", in: `user_metadata['order']['status']:'shipped'`, want: &bb.MetadataQuery{Path: []string{"order", "status"}, Value: "shipped"}},
		{name: "double quotes", in: `user_metadata["env"]:"prod"`, want: &bb.MetadataQuery{Path: []string{"env"}, Value: "prod"}},
		{name: "mixed quotes", in: `user_metadata["env"]:'prod'`, want: &bb.MetadataQuery{Path: []string{"env"}, Value: "prod"}},
		{name: "surrounding and colon white space", in: "  user_metadata['env'] :  'a b'  ", want: &bb.MetadataQuery{Path: []string{"env"}, Value: "a b"}},
		{name: "escaped quote and backslash", in: `user_metadata['it\'s']:'c:\\d'`, want: &bb.MetadataQuery{Path: []string{"it's"}, Value: `c:\d`}},
		{name: "other quote inside", in: `user_metadata['a"b']:"x'y"`, want: &bb.MetadataQuery{Path: []string{`a"b`}, Value: "x'y"}},
		{name: "other escapes kept", in: `user_metadata['a\nb']:'x'`, want: &bb.MetadataQuery{Path: []string{`a\nb`}, Value: "x"}},
		{name: "empty value", in: `user_metadata['env']:''`, want: &bb.MetadataQuery{Path: []string{"env"}, Value: ""}},
		{name: "brackets and colon in strings", in: `user_metadata['a]:[']:'b]:c'`, want: &bb.MetadataQuery{Path: []string{"a]:["}, Value: "b]:c"}},
		{name: "unicode", in: `user_metadata['ключ']:'значение'`, want: &bb.MetadataQuery{Path: []string{"ключ"}, Value: "значение"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.ParseMetadataQuery(tt.in)
			if err != nil {
				t.Fatalf("ParseMetadataQuery(%q) error: %v", tt.in, err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParseMetadataQuery(%q) mismatch (-got +want):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseMetadataQueryErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{name: "empty", in: ""},
		{name: "other base", in: `metadata['env']:'x'`},
		{name: "upper-case base", in: `USER_METADATA['env']:'x'`},
		{name: "no segment", in: `user_metadata:'x'`},
		{name: "unquoted key", in: `user_metadata[env]:'x'`},
		{name: "unterminated key", in: `user_metadata['env]:'x'`},
		{name: "missing ]", in: `user_metadata['env':'x'`},
		{name: "space before [", in: `user_metadata ['env']:'x'`},
		{name: "missing colon", in: `user_metadata['env']'x'`},
		{name: "missing value", in: `user_metadata['env']:`},
		{name: "unquoted value", in: `user_metadata['env']:staging`},
		{name: "number value", in: `user_metadata['n']:1`},
		{name: "unterminated value", in: `user_metadata['env']:'x`},
		{name: "escaped closing quote", in: `user_metadata['env']:'x\'`},
		{name: "trailing text", in: `user_metadata['env']:'x' AND 1`},
		{name: "two conditions", in: `user_metadata['a']:'x' user_metadata['b']:'y'`},
		{name: "JSON path", in: `user_metadata.env:'x'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.ParseMetadataQuery(tt.in)
			if err == nil {
				t.Fatalf("ParseMetadataQuery(%q) = %+v; want an error", tt.in, got)
			}
			if code := bb.CodeOf(err); code != bb.CodeInvalid {
				t.Errorf("ParseMetadataQuery(%q) code = %q; want %q", tt.in, code, bb.CodeInvalid)
			}
			if msg := bb.MessageOf(err); msg == "" {
				t.Errorf("ParseMetadataQuery(%q) error has no client message", tt.in)
			}
		})
	}
}

func TestMetadataQueryMatch(t *testing.T) {
	metadata := json.RawMessage(`{"env":"staging","n":1,"b":true,"s":"1","order":{"status":"shipped","tags":["a"]},"empty":"","nil":null}`)
	tests := []struct {
		name     string
		q        bb.MetadataQuery
		metadata json.RawMessage
		want     bool
	}{
		{name: "top-level string", q: bb.MetadataQuery{Path: []string{"env"}, Value: "staging"}, metadata: metadata, want: true},
		{name: "other value", q: bb.MetadataQuery{Path: []string{"env"}, Value: "prod"}, metadata: metadata},
		{name: "case-sensitive", q: bb.MetadataQuery{Path: []string{"env"}, Value: "Staging"}, metadata: metadata},
		{name: "nested", q: bb.MetadataQuery{Path: []string{"order", "status"}, Value: "shipped"}, metadata: metadata, want: true},
		{name: "missing key", q: bb.MetadataQuery{Path: []string{"nope"}, Value: "x"}, metadata: metadata},
		{name: "missing nested key", q: bb.MetadataQuery{Path: []string{"order", "nope"}, Value: "shipped"}, metadata: metadata},
		{name: "path through a string", q: bb.MetadataQuery{Path: []string{"env", "x"}, Value: "staging"}, metadata: metadata},
		{name: "number is not a string", q: bb.MetadataQuery{Path: []string{"n"}, Value: "1"}, metadata: metadata},
		{name: "number stored as string", q: bb.MetadataQuery{Path: []string{"s"}, Value: "1"}, metadata: metadata, want: true},
		{name: "boolean is not a string", q: bb.MetadataQuery{Path: []string{"b"}, Value: "true"}, metadata: metadata},
		{name: "object is not a string", q: bb.MetadataQuery{Path: []string{"order"}, Value: ""}, metadata: metadata},
		{name: "arrays are not queryable", q: bb.MetadataQuery{Path: []string{"order", "tags", "0"}, Value: "a"}, metadata: metadata},
		{name: "null is not the empty string", q: bb.MetadataQuery{Path: []string{"nil"}, Value: ""}, metadata: metadata},
		{name: "empty string", q: bb.MetadataQuery{Path: []string{"empty"}, Value: ""}, metadata: metadata, want: true},
		{name: "no metadata", q: bb.MetadataQuery{Path: []string{"env"}, Value: "staging"}},
		{name: "null metadata", q: bb.MetadataQuery{Path: []string{"env"}, Value: "staging"}, metadata: json.RawMessage(`null`)},
		{name: "corrupt metadata", q: bb.MetadataQuery{Path: []string{"env"}, Value: "staging"}, metadata: json.RawMessage(`{"env":`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Match(tt.metadata); got != tt.want {
				t.Errorf("%+v.Match(%s) = %v; want %v", tt.q, tt.metadata, got, tt.want)
			}
		})
	}
}

// TestParseMetadataQueryMatchRoundTrip checks a parsed query against the metadata it
// was written for, as GET /v1/sessions?q=… does.
func TestParseMetadataQueryMatchRoundTrip(t *testing.T) {
	q, err := bb.ParseMetadataQuery(`user_metadata['order']['status']:'shipped'`)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Match(json.RawMessage(`{"order":{"status":"shipped"}}`)) {
		t.Error("query does not match its metadata")
	}
	if q.Match(json.RawMessage(`{"order":{"status":"pending"}}`)) {
		t.Error("query matches other metadata")
	}
}

// FuzzParseMetadataQuery checks that no query panics the parser, that every rejection
// is CodeInvalid, and that an accepted query has a path.
func FuzzParseMetadataQuery(f *testing.F) {
	for _, seed := range []string{
		`user_metadata['env']:'staging'`, `user_metadata['a']['b']:"c"`, `user_metadata['it\'s']:'x\\'`,
		`user_metadata[`, `user_metadata['a']:`, `user_metadata:'x'`, ``, `user_metadata['a']:'b' trailing`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		q, err := bb.ParseMetadataQuery(in)
		if err != nil {
			if code := bb.CodeOf(err); code != bb.CodeInvalid {
				t.Fatalf("ParseMetadataQuery(%q) code = %q (%v); want %q", in, code, err, bb.CodeInvalid)
			}
			return
		}
		if len(q.Path) == 0 {
			t.Fatalf("ParseMetadataQuery(%q) = %+v: no path", in, q)
		}
		// Matching must not panic on any metadata, including the query text itself.
		q.Match(json.RawMessage(in))
		q.Match(json.RawMessage(`{"a":{"b":"c"}}`))
	})
}
