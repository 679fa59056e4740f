package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// DefaultMaxBodyBytes is the request body limit when Config.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// sessionService is what the API calls; *bb.Manager satisfies it.
type sessionService interface {
	Authenticate(ctx context.Context, rawKey string) (*bb.APIKey, error)
	CreateSession(ctx context.Context, keyProjectID string, req bb.CreateSessionRequest) (*bb.Session, error)
	Session(ctx context.Context, projectID, id string) (*bb.Session, error)
	Sessions(ctx context.Context, projectID string, f bb.SessionFilter) ([]*bb.Session, error)
	ReleaseSession(ctx context.Context, keyProjectID, id string) (*bb.Session, error)
	Projects(ctx context.Context, keyProjectID string) ([]*bb.Project, error)
	Project(ctx context.Context, keyProjectID, id string) (*bb.Project, error)
	Usage(ctx context.Context, keyProjectID, id string) (bb.ProjectUsage, error)
	SigningKey(sessionID string) string
	LiveView(ctx context.Context, projectID, id string, ttl time.Duration, readOnly bool) (*bb.LiveView, error)
}

// Config configures a Server.
type Config struct {
	// Sessions serves the API calls; required. Normally a *browserd.Manager.
	Sessions sessionService
	// Profiles serves contexts and extensions (contexts.go, extensions.go); without it
	// those endpoints answer 503, as a server without storage does. Normally a
	// *profiles.Service.
	Profiles profileService
	// Logger receives the access log and 5xx errors; nil discards them.
	Logger *slog.Logger
	// PublicURL is the base URL clients reach this server at, with an optional path
	// prefix (https://bb.example.com/prefix). It is the base of the connectUrl and
	// seleniumRemoteUrl of sessions. When empty they are derived from each request:
	// the scheme from TLS or X-Forwarded-Proto, the host from Host.
	PublicURL string
	// MaxBodyBytes limits request bodies [DefaultMaxBodyBytes]; larger ones get 413.
	MaxBodyBytes int64
	// Artifacts serves session logs, recordings, downloads and uploads (artifacts.go);
	// without it those endpoints answer 501. Normally an *artifacts.Service (internal/artifacts).
	Artifacts artifactService
	// Webhooks serves /v1/webhooks (webhooks.go); without it those endpoints answer 501.
	// Normally a *webhooks.Service (internal/webhooks).
	Webhooks webhookService
	// MaxArtifactReads bounds the session logs and recordings read at once
	// [DefaultMaxArtifactReads]; more get 503 with x-should-retry: true.
	MaxArtifactReads int
	// Certificates serves /v1/certificates (certificates.go); without it those answer
	// 503. Normally a *certs.Service (internal/certs).
	Certificates certificateService
	// Fetch serves POST /v1/fetch (fetch.go); without it that answers 501. Normally a
	// *fetch.Fetcher (internal/fetch).
	Fetch fetchService
	// Replays serves the session replays and recording downloads (replays.go); without
	// it those answer 501. Normally a *replays.Service (internal/replays).
	Replays replayService
}

// Server is the REST API. Create it with New.
type Server struct {
	sessions sessionService
	profiles profileService     // nil: the contexts and extensions endpoints answer 503
	certs    certificateService // nil: the certificates endpoints answer 503
	log      *slog.Logger
	public   *url.URL // nil: derived per request
	maxBody  int64
	handler  http.Handler

	webhooks      webhookService  // nil: the webhook endpoints answer 501
	fetch         fetchService    // nil: POST /v1/fetch answers 501
	artifacts     artifactService // nil: the artifact endpoints answer 501
	replays       replayService   // nil: the replay endpoints answer 501
	artifactReads chan struct{}   // a slot per logs or recording read (acquireArtifactRead)
	// streamWriteTimeout bounds each write of a streamed response (streamArray).
	streamWriteTimeout time.Duration
}

// New returns a Server for cfg, or an error when cfg is invalid.
func New(cfg Config) (*Server, error) {
	if cfg.Sessions == nil {
		return nil, errors.New("httpapi: Config.Sessions is required")
	}
	s := &Server{sessions: cfg.Sessions, profiles: cfg.Profiles, log: cfg.Logger, maxBody: cfg.MaxBodyBytes}
	s.artifacts = cfg.Artifacts // artifacts.go
	s.certs = cfg.Certificates  // certificates.go
	s.webhooks = cfg.Webhooks   // webhooks.go
	s.fetch = cfg.Fetch         // fetch.go
	s.replays = cfg.Replays     // replays.go
	if cfg.MaxArtifactReads <= 0 {
		cfg.MaxArtifactReads = DefaultMaxArtifactReads
	}
	s.artifactReads = make(chan struct{}, cfg.MaxArtifactReads)
	s.streamWriteTimeout = 30 * time.Second
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if cfg.PublicURL != "" {
		u, err := bb.ParsePublicURL(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("httpapi: %w", err)
		}
		s.public = u
	}
	s.handler = s.withRequestLog(s.routes())
	return s, nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.handler }

// route is one endpoint of the API, served behind authenticate.
type route struct {
	method, path string
	h            http.HandlerFunc
}

// apiRoutes is the route table. openapi_test.go fails when one is not in openapi.json.
func (s *Server) apiRoutes() []route {
	return slices.Concat([]route{
		{http.MethodPost, "/v1/sessions", s.handleCreateSession},
		{http.MethodGet, "/v1/sessions", s.handleListSessions},
		{http.MethodGet, "/v1/sessions/{id}", s.handleGetSession},
		{http.MethodPost, "/v1/sessions/{id}", s.handleUpdateSession},
		{http.MethodGet, "/v1/sessions/{id}/debug", s.handleDebugSession},
		{http.MethodGet, "/v1/sessions/{id}/logs", s.handleSessionLogs},
		{http.MethodGet, "/v1/sessions/{id}/recording", s.handleSessionRecording},
		{http.MethodGet, "/v1/sessions/{id}/downloads", s.handleSessionDownloads},
		{http.MethodPost, "/v1/sessions/{id}/uploads", s.handleSessionUpload},
		{http.MethodGet, "/v1/projects", s.handleListProjects},
		{http.MethodGet, "/v1/projects/{id}", s.handleGetProject},
		{http.MethodGet, "/v1/projects/{id}/usage", s.handleProjectUsage},
	}, s.requires(s.profiles != nil, errProfilesOff,
		route{http.MethodPost, "/v1/contexts", s.handleCreateContext},
		route{http.MethodGet, "/v1/contexts/{id}", s.handleGetContext},
		route{http.MethodPut, "/v1/contexts/{id}", s.handleUpdateContext},
		route{http.MethodDelete, "/v1/contexts/{id}", s.handleDeleteContext},
		route{http.MethodPost, "/v1/extensions", s.handleCreateExtension},
		route{http.MethodGet, "/v1/extensions/{id}", s.handleGetExtension},
		route{http.MethodDelete, "/v1/extensions/{id}", s.handleDeleteExtension},
	), s.requires(s.certs != nil, errCertificatesOff,
		route{http.MethodPost, "/v1/certificates", s.handleCreateCertificate},
		route{http.MethodGet, "/v1/certificates", s.handleListCertificates},
		route{http.MethodGet, "/v1/certificates/{id}", s.handleGetCertificate},
		route{http.MethodDelete, "/v1/certificates/{id}", s.handleDeleteCertificate},
	), s.requires(s.fetch != nil, errFetchOff,
		route{http.MethodPost, "/v1/fetch", s.handleFetch},
	), s.requires(s.webhooks != nil, errWebhooksOff, s.webhookRoutes()...),
		s.requires(s.replays != nil, errReplaysOff, s.replayRoutes()...)) // replays.go
}

// requires gives routes whose handlers need an optional service: where the server
// has none (on is false), each answers off (a 501 or 503) instead, after
// authentication as any route. The handlers can then use the service unchecked.
func (s *Server) requires(on bool, off error, routes ...route) []route {
	if on {
		return routes
	}
	for i := range routes {
		routes[i].h = func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, off) }
	}
	return routes
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/openapi.json", s.handleOpenAPI) // openapi.go; no API key needed
	allow := make(map[string][]string)
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.method+" "+rt.path, s.authenticate(rt.h))
		allow[rt.path] = append(allow[rt.path], rt.method)
	}
	// A recording's downloadUrl: its signed token is the grant, no API key (replays.go).
	mux.HandleFunc(http.MethodGet+" "+recordingFilePath, s.handleRecordingFile)
	allow[recordingFilePath] = []string{http.MethodGet}
	// A pattern without a method matches the methods the ones above do not: answer 405
	// in the API's error shape (the mux's own 405 is plain text).
	for path, methods := range allow {
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		slices.Sort(methods)
		mux.Handle(path, s.methodNotAllowed(strings.Join(methods, ", ")))
	}
	// The SDK 2.21 resources browserd does not implement (spec §6.11) answer 501 rather
	// than 404, so that users see why.
	for _, name := range []string{"search", "secrets", "agents", "functions"} {
		mux.HandleFunc("/v1/"+name, s.handleNotImplemented)
		mux.HandleFunc("/v1/"+name+"/", s.handleNotImplemented)
	}
	mux.HandleFunc("/", s.handleNotFound)
	return mux
}

type ctxKey int

const (
	projectIDKey ctxKey = iota
	requestIDKey
)

// projectIDOf returns the project of the request's API key, set by authenticate.
func projectIDOf(ctx context.Context) string {
	id, _ := ctx.Value(projectIDKey).(string)
	return id
}

// requestIDOf returns the request's id, set by withRequestLog.
func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// authenticate checks the X-BB-API-Key header (spec §1.2) and puts the key's project id
// in the request context.
func (s *Server) authenticate(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, err := s.sessions.Authenticate(r.Context(), r.Header.Get("X-BB-API-Key"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		setLogProject(r.Context(), key.ProjectID) // logattrs.go
		h(w, r.WithContext(context.WithValue(r.Context(), projectIDKey, key.ProjectID)))
	}
}

func (s *Server) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.writeError(w, r, &statusError{
			status: http.StatusMethodNotAllowed,
			msg:    fmt.Sprintf("Method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow),
		})
	}
}

func (s *Server) handleNotImplemented(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, &statusError{
		status: http.StatusNotImplemented,
		msg:    fmt.Sprintf("%s %s is not implemented by browserd", r.Method, r.URL.Path),
	})
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "Route %s %s not found", r.Method, r.URL.Path))
}

// withRequestLog gives every request an id (the x-request-id response header, spec §1.5)
// and logs it when it ends. The query string is never logged: legacy URLs carry keys.
func (s *Server) withRequestLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := bb.NewID()
		w.Header().Set("x-request-id", id)
		sw := &statusWriter{ResponseWriter: w}
		ctx, lf := withLogFields(context.WithValue(r.Context(), requestIDKey, id)) // logattrs.go
		req := r.WithContext(ctx)
		next.ServeHTTP(sw, req)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		attrs := append([]slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("request_id", id),
		}, accessAttrs(req, lf)...)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
	})
}

// statusWriter records the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
