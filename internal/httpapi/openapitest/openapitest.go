// Package openapitest checks HTTP responses against browserd's OpenAPI document
// (internal/httpapi/openapi.json), for tests: the document's schemas are JSON Schema
// 2020-12 (OpenAPI 3.1), validated with github.com/santhosh-tekuri/jsonschema.
package openapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL names the document inside the schema compiler.
const docURL = "mem://browserd/openapi.json"

// Doc is a loaded OpenAPI document.
type Doc struct {
	paths map[string]map[string]operation // template → lower-case method → operation

	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema // by JSON pointer
}

type operation struct {
	OperationID string                     `json:"operationId"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

type response struct {
	Content map[string]json.RawMessage `json:"content"`
}

var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// Load parses an OpenAPI 3.1 document and checks what the tests rely on: operation ids
// are unique, every operation has responses, and every schema compiles (so every $ref
// resolves).
func Load(data []byte) (*Doc, error) {
	var raw struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if !strings.HasPrefix(raw.OpenAPI, "3.1.") {
		return nil, fmt.Errorf("openapi: version %q, want 3.1.x", raw.OpenAPI)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, inst); err != nil {
		return nil, err
	}
	d := &Doc{paths: make(map[string]map[string]operation), compiler: c, schemas: make(map[string]*jsonschema.Schema)}
	ids := make(map[string]string)
	for tmpl, item := range raw.Paths {
		d.paths[tmpl] = make(map[string]operation)
		for m, v := range item {
			if !slices.Contains(methods, m) {
				continue // parameters, summary, …
			}
			var op operation
			if err := json.Unmarshal(v, &op); err != nil {
				return nil, fmt.Errorf("openapi: %s %s: %w", m, tmpl, err)
			}
			key := strings.ToUpper(m) + " " + tmpl
			if op.OperationID == "" || len(op.Responses) == 0 {
				return nil, fmt.Errorf("openapi: %s lacks an operationId or responses", key)
			}
			if other, dup := ids[op.OperationID]; dup {
				return nil, fmt.Errorf("openapi: operationId %q used by %s and %s", op.OperationID, other, key)
			}
			ids[op.OperationID] = key
			d.paths[tmpl][m] = op
			for status, rv := range op.Responses {
				var r response
				if err := json.Unmarshal(rv, &r); err != nil {
					return nil, fmt.Errorf("openapi: %s %s: %w", key, status, err)
				}
				for ct := range r.Content {
					if _, err := d.schema(tmpl, m, status, ct); err != nil {
						return nil, fmt.Errorf("openapi: %s %s %s: %w", key, status, ct, err)
					}
				}
			}
		}
	}
	return d, nil
}

// Operations returns every operation as "METHOD /path/{template}", sorted.
func (d *Doc) Operations() []string {
	var out []string
	for tmpl, ops := range d.paths {
		for m := range ops {
			out = append(out, strings.ToUpper(m)+" "+tmpl)
		}
	}
	slices.Sort(out)
	return out
}

// Has reports whether the document describes method on the path template.
func (d *Doc) Has(method, template string) bool {
	_, ok := d.paths[template][strings.ToLower(method)]
	return ok
}

// Match returns the template of the documented path that matches a concrete path,
// preferring templates with fewer parameters ("/v1/sessions/{id}" loses to a literal).
func (d *Doc) Match(path string) (string, bool) {
	best, bestParams := "", -1
	for tmpl := range d.paths {
		if n, ok := matchTemplate(tmpl, path); ok && (bestParams < 0 || n < bestParams) {
			best, bestParams = tmpl, n
		}
	}
	return best, bestParams >= 0
}

func matchTemplate(tmpl, path string) (params int, ok bool) {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return 0, false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") {
			if ps[i] == "" {
				return 0, false
			}
			params++
		} else if ts[i] != ps[i] {
			return 0, false
		}
	}
	return params, true
}

// ValidateResponse checks a response to method on template: its status must be
// documented (or a "default" response must exist), its Content-Type must be one the
// status documents, and a JSON body must match the schema.
func (d *Doc) ValidateResponse(method, template string, status int, header http.Header, body []byte) error {
	m := strings.ToLower(method)
	op, ok := d.paths[template][m]
	if !ok {
		return fmt.Errorf("%s %s is not documented", method, template)
	}
	code := strconv.Itoa(status)
	rv, ok := op.Responses[code]
	if !ok {
		if rv, ok = op.Responses["default"]; !ok {
			return fmt.Errorf("%s %s: status %d is not documented", method, template, status)
		}
		code = "default"
	}
	var r response
	if err := json.Unmarshal(rv, &r); err != nil {
		return err
	}
	if len(r.Content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s %s %d: documented without a body, got %d bytes", method, template, status, len(body))
		}
		return nil
	}
	ct, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil {
		return fmt.Errorf("%s %s %d: Content-Type %q: %v", method, template, status, header.Get("Content-Type"), err)
	}
	if _, ok := r.Content[ct]; !ok {
		return fmt.Errorf("%s %s %d: Content-Type %s is not documented", method, template, status, ct)
	}
	if ct != "application/json" {
		return nil
	}
	sch, err := d.schema(template, m, code, ct)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s %d: body is not JSON: %v", method, template, status, err)
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return fmt.Errorf("%s %s %d: body %s\ndoes not match the schema:\n%s", method, template, status, clip(body), ve)
		}
		return err
	}
	return nil
}

// schema compiles (once) the schema of a documented response.
func (d *Doc) schema(template, method, status, contentType string) (*jsonschema.Schema, error) {
	ptr := "#/paths/" + escape(template) + "/" + method + "/responses/" + status + "/content/" + escape(contentType) + "/schema"
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	s, err := d.compiler.Compile(docURL + ptr)
	if err != nil {
		return nil, err
	}
	d.schemas[ptr] = s
	return s, nil
}

// escape escapes a JSON pointer token (RFC 6901) for use in a URL fragment.
func escape(tok string) string {
	tok = strings.ReplaceAll(tok, "~", "~0")
	tok = strings.ReplaceAll(tok, "/", "~1")
	tok = strings.ReplaceAll(tok, "{", "%7B")
	return strings.ReplaceAll(tok, "}", "%7D")
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}
