package postgres

import (
	"errors"
	"net/url"
	"strings"
)

// Redact returns the database URL with its password replaced by "xxxxx", for logs,
// errors and /readyz. A string that does not parse as a URL is replaced whole: it may
// hold a password in a form Redact cannot find.
func Redact(database string) string {
	u, err := url.Parse(database)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// password returns the password of a database URL (in its user info or its password
// parameter), or "".
func password(database string) string {
	u, err := url.Parse(database)
	if err != nil {
		return ""
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return pw
	}
	return u.Query().Get("password")
}

// redactedError is an error whose text has the password replaced; it unwraps to the
// original, so that errors.Is and errors.As still see the causes.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr hides pw (and its URL-escaped form) in err's text.
func redactErr(err error, pw string) error {
	if err == nil || pw == "" {
		return err
	}
	msg := err.Error()
	red := strings.ReplaceAll(msg, pw, "xxxxx")
	if esc := url.QueryEscape(pw); esc != pw {
		red = strings.ReplaceAll(red, esc, "xxxxx")
	}
	if esc := url.PathEscape(pw); esc != pw {
		red = strings.ReplaceAll(red, esc, "xxxxx")
	}
	if red == msg {
		return err
	}
	var re *redactedError
	if errors.As(err, &re) {
		return &redactedError{err: re.err, msg: red}
	}
	return &redactedError{err: err, msg: red}
}
