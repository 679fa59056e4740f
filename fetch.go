package browserd

import (
	"encoding/json"
	"net/url"
	"strings"
)

// FetchFormat is what POST /v1/fetch returns as a response's content.
type FetchFormat string

// The formats of POST /v1/fetch (SDK 2.21 fetchAPI.create; docs/COMPATIBILITY.md, "Fetch").
const (
	FetchRaw      FetchFormat = "raw"      // the body as it came (text as UTF-8, anything else base64)
	FetchMarkdown FetchFormat = "markdown" // an HTML page as Markdown; other text as it came
	FetchJSON     FetchFormat = "json"     // data extracted by the operator's model, valid against a schema
)

// MaxFetchURLLength bounds the url of a fetch, as browsers and most servers bound a
// request line.
const MaxFetchURLLength = 8192

// FetchRequest is a decoded, validated POST /v1/fetch body.
type FetchRequest struct {
	// URL is absolute, http or https, with a host. Whether its host may be reached is
	// decided when it is dialled (docs/SECURITY.md, "Fetch").
	URL              *url.URL
	Format           FetchFormat
	Schema           json.RawMessage // a JSON object; set only with FetchJSON
	AllowRedirects   bool
	AllowInsecureSSL bool
	Proxies          bool // through the operator's managed upstreams (--proxy-upstream)
}

// FetchResult is the answer to a fetch: the site's response and its content in the
// requested format.
type FetchResult struct {
	ID string
	// Content is the body as text (Encoding "utf-8") or base64 (Encoding "base64"), or
	// the page as Markdown; unused with FetchJSON.
	Content string
	// Extracted is the JSON value the model extracted (FetchJSON only).
	Extracted   json.RawMessage
	ContentType string // the response's Content-Type header as sent
	Encoding    string // "utf-8" or "base64"
	// Headers are the response's headers, lower-case names, repeated values joined
	// with ", " (the SDK's {[key]: string}).
	Headers    map[string]string
	StatusCode int
}

// DecodeFetchRequest decodes and validates a POST /v1/fetch body. Unknown fields are
// ignored; every error is a CodeInvalid *Error whose message names the field.
func DecodeFetchRequest(body []byte) (FetchRequest, error) {
	req := FetchRequest{Format: FetchRaw}
	fields, err := decodeObject(body, "body")
	if err != nil {
		return req, err
	}
	raw, ok := fields["url"]
	if !ok || isNull(raw) {
		return req, Errorf(CodeInvalid, "body/url is required")
	}
	var s string
	if err := decodeField(raw, "url", "a string", &s); err != nil {
		return req, err
	}
	if req.URL, err = parseFetchURL(s); err != nil {
		return req, err
	}
	for name, dst := range map[string]*bool{
		"allowRedirects": &req.AllowRedirects, "allowInsecureSsl": &req.AllowInsecureSSL, "proxies": &req.Proxies,
	} {
		if v, ok := fields[name]; ok && !isNull(v) {
			if err := decodeField(v, name, "a boolean", dst); err != nil {
				return req, err
			}
		}
	}
	if v, ok := fields["format"]; ok && !isNull(v) {
		if err := decodeField(v, "format", "a string", &req.Format); err != nil {
			return req, err
		}
		switch req.Format {
		case FetchRaw, FetchMarkdown, FetchJSON:
		default:
			return req, Errorf(CodeInvalid, "body/format must be one of raw, markdown, json")
		}
	}
	if v, ok := fields["schema"]; ok && !isNull(v) {
		if _, err := decodeObject(v, "body/schema"); err != nil {
			return req, err
		}
		if req.Format != FetchJSON {
			return req, Errorf(CodeInvalid, "body/schema is used only with format \"json\"; remove it or set format to \"json\"")
		}
		req.Schema = compactOrEmpty(v)
	}
	if req.Format == FetchJSON && req.Schema == nil {
		return req, Errorf(CodeInvalid, "body/schema is required with format \"json\": a JSON Schema object describing what to extract")
	}
	return req, nil
}

// parseFetchURL checks a fetch's url: absolute http or https with a host, at most
// MaxFetchURLLength bytes. The fragment is dropped (never sent).
func parseFetchURL(s string) (*url.URL, error) {
	if len(s) > MaxFetchURLLength {
		return nil, Errorf(CodeInvalid, "body/url must be at most %d bytes", MaxFetchURLLength)
	}
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, Errorf(CodeInvalid, "body/url is not a valid URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return nil, Errorf(CodeInvalid, "body/url must be an absolute http:// or https:// URL")
	default:
		return nil, Errorf(CodeInvalid, "body/url must use http or https, not %q", u.Scheme)
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, Errorf(CodeInvalid, "body/url must name a host (http://host/path)")
	}
	if p := u.Port(); p != "" && (len(p) > 5 || atoiOr(p) < 1 || atoiOr(p) > 65535) {
		return nil, Errorf(CodeInvalid, "body/url has an invalid port %q", p)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// atoiOr is the value of a string of decimal digits (url.Parse checked them), or -1.
func atoiOr(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}
