package cdpproxy

import (
	"net/url"

	bb "github.com/browserd/browserd"
)

// maxCredentialLen bounds each credential parameter; real ones are under 200 bytes.
const maxCredentialLen = 4096

// ParseCredentials reads the credentials of a connect URL's query (spec/API.md §4.1):
// `signingKey=…`, the current form, or the legacy `apiKey=…&sessionId=…`. A signing key
// wins when both forms are present; other parameters (the legacy `enableProxy`) are
// ignored. It returns a CodeUnauthorized error when the query has no credentials, and
// CodeInvalid when it has conflicting, partial or oversized ones. The error messages
// never contain the credentials.
func ParseCredentials(q url.Values) (bb.ConnectCredentials, error) {
	var c bb.ConnectCredentials
	for _, p := range []struct {
		name string
		dst  *string
	}{
		{"signingKey", &c.SigningKey},
		{"apiKey", &c.APIKey},
		{"sessionId", &c.SessionID},
	} {
		v, err := param(q, p.name)
		if err != nil {
			return bb.ConnectCredentials{}, err
		}
		*p.dst = v
	}
	switch {
	case c.SigningKey != "":
		return bb.ConnectCredentials{SigningKey: c.SigningKey}, nil
	case c.APIKey != "" && c.SessionID != "":
		return c, nil
	case c.APIKey != "":
		return bb.ConnectCredentials{}, bb.Errorf(bb.CodeInvalid, "sessionId is required with apiKey")
	case c.SessionID != "":
		return bb.ConnectCredentials{}, bb.Errorf(bb.CodeUnauthorized, "missing signingKey (or apiKey with sessionId)")
	}
	return bb.ConnectCredentials{}, bb.Errorf(bb.CodeUnauthorized, "missing signingKey (or apiKey and sessionId)")
}

// param returns a query parameter that must not be repeated with different values.
func param(q url.Values, name string) (string, error) {
	vs := q[name]
	if len(vs) == 0 {
		return "", nil
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", bb.Errorf(bb.CodeInvalid, "query parameter %s is given more than once", name)
		}
	}
	if len(vs[0]) > maxCredentialLen {
		return "", bb.Errorf(bb.CodeInvalid, "query parameter %s is too long", name)
	}
	return vs[0], nil
}
