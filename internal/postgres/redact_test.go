package postgres_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/postgres"
)

// FuzzRedact: Redact never panics, and the password of a URL never survives it (in any
// of the forms a URL can hold it: user info or the password parameter).
func FuzzRedact(f *testing.F) {
	f.Add("postgres://u:secret@h:5432/db?sslmode=disable", "user", "s3cret", "host")
	f.Add("postgresql://h/db?password=x", "u", "p@ss:w/rd?&=", "h:1")
	f.Add("not a url \x7f", "", "", "")
	f.Fuzz(func(t *testing.T, raw, user, pw, host string) {
		_ = postgres.Redact(raw) // any input: no panic
		_ = postgres.IsURL(raw)
		if len(pw) < 4 || strings.Contains("postgres://"+user+"@"+host+"/db?sslmode=disable&password=xxxxx", pw) {
			return // too short to tell apart from the rest of the URL
		}
		u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: host, Path: "/db"}
		if r := postgres.Redact(u.String()); strings.Contains(r, pw) || strings.Contains(r, url.QueryEscape(pw)) {
			t.Errorf("Redact(%q) = %q keeps the password", u.String(), r)
		}
		q := url.URL{Scheme: "postgresql", Host: host, Path: "/db", RawQuery: url.Values{"password": {pw}, "user": {user}}.Encode()}
		if r := postgres.Redact(q.String()); strings.Contains(r, pw) || strings.Contains(r, url.QueryEscape(pw)) {
			t.Errorf("Redact(%q) = %q keeps the password", q.String(), r)
		}
	})
}
