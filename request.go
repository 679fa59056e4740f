package browserd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Limits of a create request (spec §3.1).
const (
	MinTimeout          = 60
	MaxTimeout          = 21600
	MaxUserMetadataSize = 511 // the JSON-serialized metadata must be shorter than 512 characters
	MaxViewportSide     = 7680
)

// CreateSessionRequest is a decoded, validated POST /v1/sessions body.
type CreateSessionRequest struct {
	ProjectID string
	// Settings are the known browserSettings fields; BrowserSettings the object verbatim.
	Settings        BrowserSettings
	BrowserSettings json.RawMessage
	// ExtensionID is the extension to load: the top-level extensionId, or else
	// browserSettings.extensionId (docs/COMPATIBILITY.md: the top level wins).
	ExtensionID   string
	KeepAlive     bool
	Timeout       int // seconds; 0 means the project's default
	Region        Region
	Proxies       json.RawMessage // true/false or an array of rules; nil when absent
	Proxy         []ProxyRule     // the parsed array form
	ProxyManaged  bool            // proxies: true
	ProxySettings json.RawMessage
	// CACertificateIDs are proxySettings.caCertificates: the ids of the project's
	// certificates the session trusts, sorted and without duplicates.
	CACertificateIDs []string
	// CACertificates are those certificates, resolved by the certificates part's Check
	// (internal/certs) for the parts after it: the setup part's session proxy trusts
	// them for https upstream proxies.
	CACertificates []*Certificate
	UserMetadata   json.RawMessage // compact JSON object; nil when absent
	Raw            json.RawMessage // the whole body, verbatim
}

// ProxyRule is one element of a create request's proxies array (spec §3.1).
type ProxyRule struct {
	Type          string          `json:"type"`
	Server        string          `json:"server,omitempty"`
	Username      string          `json:"username,omitempty"`
	Password      string          `json:"password,omitempty"`
	DomainPattern string          `json:"domainPattern,omitempty"`
	Geolocation   json.RawMessage `json:"geolocation,omitempty"`

	// What decoding parsed, so that planning does not parse it again (PlanProxies).
	upstream *ProxyUpstream
	re       *regexp.Regexp
}

// DecodeCreateSessionRequest decodes and validates a POST /v1/sessions body. An empty
// body is the same as {}. Unknown fields are kept in Raw and otherwise ignored; every
// validation error is a CodeInvalid *Error whose message names the field.
func DecodeCreateSessionRequest(body []byte) (CreateSessionRequest, error) {
	var req CreateSessionRequest
	fields, err := decodeObject(body, "body")
	if err != nil {
		return req, err
	}
	req.Raw = compactOrEmpty(body)
	if v, ok := fields["projectId"]; ok {
		if err := decodeField(v, "projectId", "a string", &req.ProjectID); err != nil {
			return req, err
		}
	}
	if v, ok := fields["keepAlive"]; ok {
		if err := decodeField(v, "keepAlive", "a boolean", &req.KeepAlive); err != nil {
			return req, err
		}
	}
	if v, ok := fields["timeout"]; ok && !isNull(v) {
		if err := decodeField(v, "timeout", "an integer", &req.Timeout); err != nil {
			return req, err
		}
		if req.Timeout < MinTimeout {
			return req, Errorf(CodeInvalid, "body/timeout must be >= %d", MinTimeout)
		}
		if req.Timeout > MaxTimeout {
			return req, Errorf(CodeInvalid, "body/timeout must be <= %d", MaxTimeout)
		}
	}
	req.Region = RegionUSWest2
	if v, ok := fields["region"]; ok && !isNull(v) {
		if err := decodeField(v, "region", "a string", &req.Region); err != nil {
			return req, err
		}
		if !req.Region.Valid() {
			return req, Errorf(CodeInvalid, "body/region must be one of us-west-2, us-east-1, eu-central-1, ap-southeast-1")
		}
	}
	if v, ok := fields["extensionId"]; ok && !isNull(v) {
		if err := decodeField(v, "extensionId", "a string", &req.ExtensionID); err != nil {
			return req, err
		}
	}
	if v, ok := fields["userMetadata"]; ok && !isNull(v) {
		if _, err := decodeObject(v, "body/userMetadata"); err != nil {
			return req, err
		}
		req.UserMetadata = compactOrEmpty(v)
		if n := jsLength(req.UserMetadata); n > MaxUserMetadataSize {
			return req, Errorf(CodeInvalid, "body/userMetadata must be shorter than 512 characters when serialized (got %d)", n)
		}
	}
	if v, ok := fields["browserSettings"]; ok && !isNull(v) {
		if err := decodeBrowserSettings(v, &req.Settings); err != nil {
			return req, err
		}
		req.BrowserSettings = compactOrEmpty(v)
	}
	if req.ExtensionID == "" {
		req.ExtensionID = req.Settings.ExtensionID
	}
	if v, ok := fields["proxies"]; ok && !isNull(v) {
		if err := decodeProxies(v, &req); err != nil {
			return req, err
		}
		req.Proxies = compactOrEmpty(v)
	}
	if v, ok := fields["proxySettings"]; ok && !isNull(v) {
		var ps struct {
			CACertificates []string `json:"caCertificates"`
		}
		if _, err := decodeObject(v, "body/proxySettings"); err != nil {
			return req, err
		}
		if err := decodeField(v, "proxySettings", "an object", &ps); err != nil {
			return req, err
		}
		ids, err := cleanCertificateIDs(ps.CACertificates)
		if err != nil {
			return req, err
		}
		req.CACertificateIDs = ids
		req.ProxySettings = compactOrEmpty(v)
	}
	return req, nil
}

// cleanCertificateIDs sorts ids and drops duplicates; an empty id or more than
// MaxSessionCertificates is CodeInvalid. Sorted, equal sets give equal launch keys (the
// warm pool keeps browsers per set).
func cleanCertificateIDs(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := slices.Clone(ids)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxSessionCertificates {
		return nil, Errorf(CodeInvalid, "body/proxySettings/caCertificates must not name more than %d certificates", MaxSessionCertificates)
	}
	for _, id := range out {
		if strings.TrimSpace(id) == "" {
			return nil, Errorf(CodeInvalid, "body/proxySettings/caCertificates must hold certificate ids, not empty strings")
		}
	}
	return out, nil
}

var validOS = map[string]bool{"windows": true, "mac": true, "linux": true, "mobile": true, "tablet": true}

func decodeBrowserSettings(v json.RawMessage, bs *BrowserSettings) error {
	fields, err := decodeObject(v, "body/browserSettings")
	if err != nil {
		return err
	}
	if err := decodeField(v, "browserSettings", "an object", bs); err != nil {
		return err
	}
	if c, ok := fields["context"]; ok && !isNull(c) {
		if _, err := decodeObject(c, "body/browserSettings/context"); err != nil {
			return err
		}
		if bs.Context == nil || strings.TrimSpace(bs.Context.ID) == "" {
			return Errorf(CodeInvalid, "body/browserSettings/context must have required property 'id'")
		}
	}
	if vp := bs.Viewport; vp != nil {
		if vp.Width < 0 || vp.Width > MaxViewportSide || vp.Height < 0 || vp.Height > MaxViewportSide {
			return Errorf(CodeInvalid, "body/browserSettings/viewport width and height must be between 1 and %d", MaxViewportSide)
		}
	}
	if bs.OS != "" && !validOS[bs.OS] {
		return Errorf(CodeInvalid, "body/browserSettings/os must be one of windows, mac, linux, mobile, tablet")
	}
	if err := validateAllowedDomains(bs.AllowedDomains); err != nil { // fingerprint.go
		return err
	}
	if len(bs.Fingerprint) > 0 && !isNull(bs.Fingerprint) {
		// Its locales reach Chromium's command line (security-review F6).
		if err := validateFingerprint(bs.Fingerprint); err != nil { // fingerprint.go
			return err
		}
	}
	return nil
}

func decodeProxies(v json.RawMessage, req *CreateSessionRequest) error {
	var b bool
	if err := json.Unmarshal(v, &b); err == nil {
		req.ProxyManaged = b
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return Errorf(CodeInvalid, "body/proxies must be a boolean or an array of proxy rules")
	}
	for i, item := range items {
		field := fmt.Sprintf("body/proxies/%d", i)
		if _, err := decodeObject(item, field); err != nil {
			return err
		}
		var r ProxyRule
		if err := decodeField(item, fmt.Sprintf("proxies/%d", i), "an object", &r); err != nil {
			return err
		}
		switch r.Type {
		case "external":
			if strings.TrimSpace(r.Server) == "" {
				return Errorf(CodeInvalid, "%s/server is required for an external proxy", field)
			}
			u, err := ParseProxyUpstream(r.Server, r.Username, r.Password)
			if err != nil {
				return &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s/server %v", field, err), Err: err}
			}
			r.upstream = &u
		case "browserbase", "none":
		case "":
			return Errorf(CodeInvalid, "%s must have required property 'type'", field)
		default:
			return Errorf(CodeInvalid, "%s/type must be one of browserbase, external, none", field)
		}
		if r.DomainPattern != "" {
			re, err := CompileDomainPattern(r.DomainPattern)
			if err != nil {
				return &Error{Code: CodeInvalid, Message: fmt.Sprintf("%s/domainPattern %v", field, err), Err: err}
			}
			r.re = re
		}
		if len(r.Geolocation) > 0 && !isNull(r.Geolocation) {
			if _, err := decodeObject(r.Geolocation, field+"/geolocation"); err != nil {
				return err
			}
		}
		req.Proxy = append(req.Proxy, r)
	}
	return nil
}

// decodeObject checks that v is a JSON object and returns its members. Empty input
// counts as {} (clients send empty bodies with a JSON content type, spec §1.3).
func decodeObject(v []byte, name string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(v)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(v) {
			return nil, Errorf(CodeInvalid, "%s is not valid JSON", name)
		}
		return nil, Errorf(CodeInvalid, "%s must be an object", name)
	}
	return m, nil
}

// decodeField unmarshals v into dst, translating type errors into a message naming the
// field (and the nested field, when the error is deeper).
func decodeField(v json.RawMessage, name, want string, dst any) error {
	err := json.Unmarshal(v, dst)
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := name
		if te.Field != "" && te.Field != name {
			field = name + "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return Errorf(CodeInvalid, "body/%s must be %s", field, typeName(te.Type.Kind().String()))
	}
	return Errorf(CodeInvalid, "body/%s must be %s", name, want)
}

func typeName(kind string) string {
	switch kind {
	case "int", "int64", "int32", "uint", "uint8", "uint64":
		return "an integer"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "of another type"
}

// jsLength is the length of b as JavaScript counts characters (UTF-16 code units), the
// way Browserbase measures serialized userMetadata; len(b) would count bytes.
func jsLength(b []byte) int {
	n := 0
	for _, r := range string(b) {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

func isNull(v []byte) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

func compactOrEmpty(v []byte) json.RawMessage {
	if len(bytes.TrimSpace(v)) == 0 {
		return json.RawMessage("{}")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return json.RawMessage("{}")
	}
	return buf.Bytes()
}
