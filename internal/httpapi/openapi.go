package httpapi

import (
	_ "embed" // the OpenAPI document
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every endpoint browserd serves: this API, the
// CDP and WebDriver endpoints, the live view and the operational endpoints. Tests keep
// it honest: openapi_test.go fails for a route missing from it, and internal/server's
// TestOpenAPIResponses validates a real server's responses against its schemas.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI document served at /v1/openapi.json.
func OpenAPI() []byte { return openAPI }

// handleOpenAPI serves GET /v1/openapi.json, without an API key: the document holds
// nothing secret, and tools read it before they have one.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(openAPI) // a failed write means the client left; nothing to do
}

// Routes returns the API's routes as "METHOD /path/{param}", GET /v1/openapi.json
// included, for tests that compare them with the OpenAPI document.
func Routes() []string {
	out := []string{"GET /v1/openapi.json"}
	for _, rt := range (&Server{}).apiRoutes() { // handlers are bound, never called
		out = append(out, rt.method+" "+rt.path)
	}
	return append(out, "GET "+recordingFilePath) // replays.go: no API key, a signed token
}
