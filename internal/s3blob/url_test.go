package s3blob_test

import (
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/s3blob"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want s3blob.Location
		path bool
	}{
		{"s3://my-bucket", s3blob.Location{Bucket: "my-bucket", Secure: true}, false},
		{"s3://my-bucket/", s3blob.Location{Bucket: "my-bucket", Secure: true}, false},
		{"s3://my.bucket/a/b/?region=eu-west-1", s3blob.Location{Bucket: "my.bucket", Prefix: "a/b/", Region: "eu-west-1", Secure: true}, false},
		{"s3://b12/pre?endpoint=http://127.0.0.1:8333&region=us-east-1",
			s3blob.Location{Bucket: "b12", Prefix: "pre/", Endpoint: "127.0.0.1:8333", Region: "us-east-1"}, true},
		{"s3://b12?endpoint=https://s3.example.com/", s3blob.Location{Bucket: "b12", Endpoint: "s3.example.com", Secure: true}, true},
		{"s3://b12?endpoint=https://s3.eu-west-1.amazonaws.com", s3blob.Location{Bucket: "b12", Endpoint: "s3.eu-west-1.amazonaws.com", Secure: true}, false},
		{"s3://b12?endpoint=http://[::1]:9000", s3blob.Location{Bucket: "b12", Endpoint: "[::1]:9000"}, true},
	}
	for _, g := range good {
		got, err := s3blob.ParseURL(g.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", g.in, err)
			continue
		}
		if got != g.want || got.PathStyle() != g.path {
			t.Errorf("ParseURL(%q) = %+v (path style %v); want %+v (%v)", g.in, got, got.PathStyle(), g.want, g.path)
		}
		again, err := s3blob.ParseURL(got.String())
		if err != nil || again != got {
			t.Errorf("ParseURL(%q.String() = %q) = %+v, %v", g.in, got.String(), again, err)
		}
	}
	bad := []struct{ in, wantErr string }{
		{"/var/lib/browserd", "s3://"},
		{"http://bucket", "s3://"},
		{"s3://", "bucket"},
		{"s3://ab", "bucket"},
		{"s3://Upper", "bucket"},
		{"s3://bad_bucket", "bucket"},
		{"s3://-bucket", "bucket"},
		{"s3://a..b", "bucket"},
		{"s3://192.168.1.1", "bucket"},
		{"s3://" + strings.Repeat("b", 64), "bucket"},
		{"s3://key:secret@bucket", "credentials"},
		{"s3://bucket:9000", "bucket"},
		{"s3://bucket/a//b", "prefix"},
		{"s3://bucket/../x", "prefix"},
		{"s3://bucket/a/./b", "prefix"},
		{"s3://bucket#frag", "fragment"},
		{"s3://bucket?endpoint=127.0.0.1:9000", "endpoint"},
		{"s3://bucket?endpoint=ftp://host", "endpoint"},
		{"s3://bucket?endpoint=http://", "host"},
		{"s3://bucket?endpoint=http://u:p@host", "credentials"},
		{"s3://bucket?endpoint=http://host/path", "bare origin"},
		{"s3://bucket?endpoint=http://host:99999", "port"},
		{"s3://bucket?endpoint=http://host:", "port"},
		{"s3://bucket?endpoint=http://a&endpoint=http://b", "2 times"},
		{"s3://bucket?region=", "region"},
		{"s3://bucket?region=EU_WEST", "region"},
		{"s3://bucket?pathStyle=true", "unknown parameter"},
		{"s3://bucket?endpoint=%zz", "query"},
	}
	for _, b := range bad {
		_, err := s3blob.ParseURL(b.in)
		if err == nil || !strings.Contains(err.Error(), b.wantErr) {
			t.Errorf("ParseURL(%q) = %v; want an error about %q", b.in, err, b.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "secret") && strings.Contains(b.in, "secret") {
			t.Errorf("ParseURL(%q) shows the secret: %v", b.in, err)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"s3://bucket", "s3://b12/pre?endpoint=http://127.0.0.1:8333&region=us-east-1",
		"s3://a..b", "s3://k:s@b", "s3://bucket?endpoint=http://[::1]:9000", "s3://bucket/%2e%2e/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := s3blob.ParseURL(s)
		if err != nil {
			return
		}
		// What parses is a usable location, and prints back to itself.
		if l.Bucket == "" || (l.Prefix != "" && !strings.HasSuffix(l.Prefix, "/")) || strings.Contains(l.Endpoint, "@") {
			t.Fatalf("ParseURL(%q) = %+v", s, l)
		}
		again, err := s3blob.ParseURL(l.String())
		if err != nil || again != l {
			t.Fatalf("ParseURL(%q) = %+v; its String %q parses to %+v, %v", s, l, l.String(), again, err)
		}
	})
}
