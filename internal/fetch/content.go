package fetch

import (
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	htmltomarkdown "github.com/JohannesKaufmann/html-to-markdown/v2"
	"github.com/JohannesKaufmann/html-to-markdown/v2/converter"
	"golang.org/x/net/html/charset"

	bb "github.com/browserd/browserd"
)

// content is a response body with what its Content-Type (or, without one, its first
// bytes) says it is.
type content struct {
	mediaType string // lower-case, without parameters; sniffed when the response had none
	body      []byte
	text      string // the body as UTF-8, valid when isText
	isText    bool
}

// decodeContent reads a body: text (text/*, JSON, XML, JavaScript, and the like) in
// the charset its Content-Type or, for HTML, its BOM or <meta> names, converted to
// UTF-8; a body that does not decode to valid UTF-8 is not text.
func decodeContent(contentType string, body []byte) content {
	c := content{body: body}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt == "" {
		mt, _, _ = strings.Cut(contentType, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
	}
	if mt == "" {
		mt, _, _ = strings.Cut(http.DetectContentType(body), ";")
	}
	c.mediaType = mt
	if !textual(mt) {
		return c
	}
	var text []byte
	switch name := strings.ToLower(params["charset"]); {
	case name == "" && (mt == "text/html" || mt == "application/xhtml+xml"):
		enc, _, _ := charset.DetermineEncoding(body, contentType) // BOM, <meta>, else windows-1252 or UTF-8 as browsers
		text, err = enc.NewDecoder().Bytes(body)
	case name == "" || name == "utf-8" || name == "utf8" || name == "us-ascii":
		text = body
	default:
		enc, _ := charset.Lookup(name)
		if enc == nil {
			return c // an unknown charset: hand the bytes over untouched (base64)
		}
		text, err = enc.NewDecoder().Bytes(body)
	}
	if err != nil || !utf8.Valid(text) {
		return c
	}
	c.text, c.isText = strings.TrimPrefix(string(text), "\uFEFF"), true
	return c
}

// textual reports whether a media type is text whatever its name says.
func textual(mt string) bool {
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-javascript", "application/x-www-form-urlencoded", "application/graphql", "application/yaml",
		"application/x-yaml", "application/toml", "application/x-ndjson", "application/csv":
		return true
	}
	return false
}

// isHTML reports whether the content is an HTML page.
func (c content) isHTML() bool {
	return c.mediaType == "text/html" || c.mediaType == "application/xhtml+xml"
}

// raw is the content for format "raw": text as UTF-8, anything else base64
// (Browserbase's encodings, docs/COMPATIBILITY.md).
func (c content) raw() (text, encoding string) {
	if c.isText {
		return c.text, "utf-8"
	}
	return base64.StdEncoding.EncodeToString(c.body), "base64"
}

// markdown is the content for format "markdown" (and the page a model reads): an HTML
// page converted, its links made absolute against base; other text as it is. Binary
// content cannot be Markdown: 422.
func (c content) markdown(base *url.URL) (string, error) {
	if !c.isText {
		return "", bb.Errorf(bb.CodeUnprocessable, "the response is %s, not HTML or text, so it has no Markdown form; fetch it with format \"raw\" (base64)", orUnknown(c.mediaType))
	}
	if !c.isHTML() {
		return c.text, nil
	}
	page := *base
	page.User = nil // the client's credentials stay out of the links
	md, err := htmltomarkdown.ConvertString(c.text, converter.WithDomain(page.String()))
	if err != nil {
		return "", &bb.Error{Code: bb.CodeUnprocessable, Message: "the page could not be converted to Markdown; fetch it with format \"raw\"", Err: fmt.Errorf("html to markdown: %w", err)}
	}
	return md, nil
}

func orUnknown(mt string) string {
	if mt == "" {
		return "of an unknown type"
	}
	return mt
}

// flattenHeaders returns h with lower-case names and repeated values joined with ", "
// (the SDK's {[key]: string}).
func flattenHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		k = strings.ToLower(k)
		if prev, ok := out[k]; ok {
			vs = append([]string{prev}, vs...)
		}
		out[k] = strings.Join(vs, ", ")
	}
	return out
}

// truncateUTF8 cuts s to at most n bytes, at a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
