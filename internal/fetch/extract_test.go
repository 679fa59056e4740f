package fetch

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	bb "github.com/browserd/browserd"
)

// fakeModel is an OpenAI-compatible chat completions endpoint (the external service
// of format "json") that answers with answer and records what it was sent.
type fakeModel struct {
	*httptest.Server
	mu     sync.Mutex
	answer string // the message content; "" answers status instead
	status int
	delay  time.Duration
	got    []chatRequest
	auth   []string
}

func startModel(t *testing.T, answer string) *fakeModel {
	t.Helper()
	m := &fakeModel{answer: answer, status: 200}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "wrong endpoint "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req chatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.mu.Lock()
		m.got = append(m.got, req)
		m.auth = append(m.auth, r.Header.Get("Authorization"))
		answer, status, delay := m.answer, m.status, m.delay
		m.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		if status != 200 {
			http.Error(w, `{"error":{"message":"model not found"}}`, status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": answer}, "finish_reason": "stop"}},
		})
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *fakeModel) set(answer string, status int, delay time.Duration) {
	m.mu.Lock()
	m.answer, m.status, m.delay = answer, status, delay
	m.mu.Unlock()
}

const productSchema = `{"type":"object","properties":{"title":{"type":"string"},"price":{"type":"number"}},"required":["title","price"],"additionalProperties":false}`

func TestExtract(t *testing.T) {
	ts := site(t)
	model := startModel(t, `{"title":"Hello","price":12.5}`)
	ex, err := NewExtractor(ExtractorConfig{URL: model.URL + "/v1/", Model: "test-model", APIKey: "sk-test", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := newFetcher(t, Config{Extractor: ex})
	req := mustReq(t, `{"url":"`+ts.URL+`/page","format":"json","schema":`+productSchema+`}`)
	res, err := f.Fetch(t.Context(), "p1", req)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Extracted) != `{"title":"Hello","price":12.5}` || res.StatusCode != 200 || res.Encoding != "utf-8" {
		t.Errorf("result %+v, extracted %s", res, res.Extracted)
	}
	model.mu.Lock()
	sent, auth := model.got[0], model.auth[0]
	model.mu.Unlock()
	if sent.Model != "test-model" || auth != "Bearer sk-test" || sent.ResponseFormat.Type != "json_schema" ||
		string(sent.ResponseFormat.JSONSchema.Schema) != productSchema {
		t.Errorf("model request %+v (auth %q)", sent, auth)
	}
	if user := sent.Messages[len(sent.Messages)-1].Content; !strings.Contains(user, "# Hello") || !strings.Contains(user, productSchema) {
		t.Errorf("the model was not sent the page as Markdown and the schema:\n%s", user)
	}

	tests := []struct {
		name, answer string
		status       int
		delay        time.Duration
		wantCode     bb.ErrorCode
		wantMsg      string
	}{
		{name: "fenced answer", answer: "```json\n{\"title\":\"A\",\"price\":1}\n```", wantCode: ""},
		{name: "not JSON", answer: "The title is Hello.", wantCode: bb.CodeBadGateway, wantMsg: "did not answer with JSON"},
		{name: "missing field", answer: `{"title":"Hello"}`, wantCode: bb.CodeBadGateway, wantMsg: "does not match the schema"},
		{name: "wrong type", answer: `{"title":"Hello","price":"cheap"}`, wantCode: bb.CodeBadGateway, wantMsg: "/price"},
		{name: "extra field", answer: `{"title":"Hello","price":1,"x":2}`, wantCode: bb.CodeBadGateway, wantMsg: "does not match"},
		{name: "endpoint error", status: 404, wantCode: bb.CodeBadGateway, wantMsg: "answered 404"},
		{name: "slow model", answer: `{}`, delay: 3 * time.Second, wantCode: bb.CodeTimeout, wantMsg: "within 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := tt.status
			if status == 0 {
				status = 200
			}
			model.set(tt.answer, status, tt.delay)
			_, err := f.Fetch(t.Context(), "p1", req)
			if bb.CodeOf(err) != tt.wantCode && !(tt.wantCode == "" && err == nil) || !strings.Contains(bb.MessageOf(err), tt.wantMsg) {
				t.Errorf("Fetch = %v; want %q containing %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestExtractRefusals(t *testing.T) {
	ts := site(t)
	f, d := newFetcher(t, Config{})
	_, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/page","format":"json","schema":{}}`))
	if bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(bb.MessageOf(err), "--llm-url") {
		t.Errorf("json without a model: %v; want 400 naming --llm-url", err)
	}
	model := startModel(t, `{}`)
	ex, err := NewExtractor(ExtractorConfig{URL: model.URL + "/v1/chat/completions", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	f, d = newFetcher(t, Config{Extractor: ex})
	for _, schema := range []string{
		`{"$ref":"file:///etc/passwd"}`,
		`{"$ref":"http://169.254.169.254/latest/meta-data/"}`,
		`{"type":"nonsense"}`,
		`{"type":"object","properties":{"a":{"pattern":"("}}}`,
	} {
		_, err := f.Fetch(t.Context(), "p1", mustReq(t, `{"url":"`+ts.URL+`/page","format":"json","schema":`+schema+`}`))
		if bb.CodeOf(err) != bb.CodeInvalid || !strings.Contains(bb.MessageOf(err), "body/schema") {
			t.Errorf("schema %s: %v; want 400", schema, err)
		}
	}
	if n := len(d.seen()); n != 0 {
		t.Errorf("refused requests dialled %d times; want none", n)
	}
	if len(model.got) != 0 {
		t.Errorf("the model was called %d times", len(model.got))
	}
	for _, cfg := range []ExtractorConfig{{URL: "", Model: "m"}, {URL: "ftp://x/", Model: "m"}, {URL: "http://x/v1"}} {
		if _, err := NewExtractor(cfg); err == nil {
			t.Errorf("NewExtractor(%+v) accepted", cfg)
		}
	}
}

// FuzzValidateModelAnswer checks that any model message is accepted only as compact
// JSON valid against the schema, or refused with a 502; never a panic.
func FuzzValidateModelAnswer(f *testing.F) {
	for _, s := range []string{`{"title":"a","price":1}`, "```json\n{}\n```", "```", `[1,2]`, `{"title":1}`, "", "```json```", `{"a":` + strings.Repeat("[", 100)} {
		f.Add(s)
	}
	schema, err := compileSchema(json.RawMessage(productSchema))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		out, err := validateModelAnswer(msg, schema)
		if err != nil {
			if bb.CodeOf(err) != bb.CodeBadGateway {
				t.Fatalf("error %v has code %q", err, bb.CodeOf(err))
			}
			return
		}
		var v struct {
			Title string  `json:"title"`
			Price float64 `json:"price"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("accepted %q as %s, which is not the schema's object: %v", msg, out, err)
		}
	})
}

// FuzzDecodeContent checks that any body with any Content-Type gives text that is valid
// UTF-8 or base64 that decodes to the body, and that Markdown never panics.
func FuzzDecodeContent(f *testing.F) {
	for _, s := range [][2]string{
		{"text/html; charset=utf-8", "<h1>x</h1><a href='/y'>y</a>"},
		{"text/plain; charset=iso-8859-1", "caf\xe9"},
		{"text/html", "<meta charset=shift_jis>\x82\xa0"},
		{"", "\x89PNG\r\n\x1a\n"},
		{"text/plain; charset=nonsense", "x"},
		{"application/json;;;", "{}"},
		{"text/html", "<table><tr><td><ul><li><pre><code>" + strings.Repeat("<b>", 50)},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	base, err := mustParse("http://example.test/a/b?c=1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		c := decodeContent(contentType, body)
		text, enc := c.raw()
		switch enc {
		case "utf-8":
			if !utf8Valid(text) {
				t.Fatalf("utf-8 content is not valid UTF-8: %q", text)
			}
		case "base64":
			if string(mustB64(t, text)) != string(body) {
				t.Fatalf("base64 content does not decode to the body")
			}
		default:
			t.Fatalf("encoding %q", enc)
		}
		md, err := c.markdown(base)
		if err == nil && !utf8Valid(md) {
			t.Fatalf("markdown is not valid UTF-8: %q", md)
		}
		if err != nil && bb.CodeOf(err) != bb.CodeUnprocessable {
			t.Fatalf("markdown error %v has code %q", err, bb.CodeOf(err))
		}
	})
}

func mustParse(s string) (*url.URL, error) { return url.Parse(s) }

func utf8Valid(s string) bool { return utf8.ValidString(s) }

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("content is not base64: %v", err)
	}
	return b
}

func TestRepeatedKey(t *testing.T) {
	for s, want := range map[string]string{
		`{"a":1,"b":2}`:                      "",
		`{"a":1,"a":2}`:                      "a",
		`{"a":{"b":1},"c":{"b":2}}`:          "",
		`{"a":{"b":1,"b":2}}`:                "b",
		`[{"a":1},{"a":2}]`:                  "",
		`{"a":["a","a"],"b":"a"}`:            "",
		`{"a":[{"x":1}],"a":0}`:              "a",
		`{"title":"","price":"","price":0}`:  "price",
		`"a"`:                                "",
		`{"a":{},"b":[],"c":null,"a":false}`: "a",
	} {
		got, ok := repeatedKey(s)
		if got != want || ok != (want != "") {
			t.Errorf("repeatedKey(%s) = %q, %v; want %q", s, got, ok, want)
		}
	}
}
