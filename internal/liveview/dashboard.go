package liveview

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

var templateFuncs = template.FuncMap{
	"age": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := time.Since(t)
		switch {
		case d < time.Minute:
			return fmt.Sprintf("%ds ago", int(d.Seconds()))
		case d < time.Hour:
			return fmt.Sprintf("%dm ago", int(d.Minutes()))
		case d < 48*time.Hour:
			return fmt.Sprintf("%dh ago", int(d.Hours()))
		}
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	},
	"rfc3339": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"metadata": func(raw json.RawMessage) string {
		if len(raw) == 0 {
			return ""
		}
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return string(raw)
		}
		s := buf.String()
		if len(s) > 200 {
			s = s[:197] + "…"
		}
		return s
	},
}

// statuses are the filter choices of the session list.
var statuses = []bb.SessionStatus{bb.StatusRunning, bb.StatusPending, bb.StatusCompleted, bb.StatusTimedOut, bb.StatusError}

// signedIn returns the request's sign-in and its API key, authenticated again (a
// revoked key ends the sign-in), or nil. Only navigations are signed in (see
// scriptRequest).
func (s *Server) signedIn(r *http.Request) (*signin, *bb.APIKey) {
	if scriptRequest(r) {
		return nil, nil
	}
	si := s.lookupSignin(r)
	if si == nil {
		return nil, nil
	}
	key, err := s.sessions.Authenticate(r.Context(), si.apiKey)
	if err != nil {
		return nil, nil
	}
	return si, key
}

// page renders a dashboard page. root is the relative path from the page to /.
func (s *Server) page(w http.ResponseWriter, r *http.Request, status int, name, root string, data map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	// A window a same-origin page opens on the dashboard is cut off from its opener, so
	// that a script of the live view's origin cannot read it (security review F14).
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	// Same-origin requests keep their Origin (no-referrer would make it "null", which
	// the sign-in and CSRF checks refuse); other sites learn nothing.
	h.Set("Referrer-Policy", "same-origin")
	if h.Get("Content-Security-Policy") == "" { // the inspector sets its own (inspectorCSP)
		base := s.publicBase(r)
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-src 'self' "+base.Scheme+"://"+base.Host+
			"; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	}
	data["Root"] = root
	for _, k := range []string{"Title", "Status", "CSRF", "Error"} {
		if _, ok := data[k]; !ok {
			data[k] = ""
		}
	}
	w.WriteHeader(status)
	if err := s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("render dashboard page", "page", name, "err", err)
	}
}

// redirect answers 303 with a Location relative to the request, so that the dashboard
// works under a path prefix too.
func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

func (s *Server) secure(r *http.Request) bool { return s.publicBase(r).Scheme == "https" }

// scriptRequest reports whether a browser says a request was made by a script (fetch,
// XMLHttpRequest) rather than by a navigation or a form. The dashboard has no script of
// its own; a script asking for its pages is one on the same origin (the live view and
// the DevTools frontend share it, security review F14), which must not read a page or
// its CSRF token with the sign-in cookie. Clients that send no Sec-Fetch-Mode (not
// browsers, or old ones) are not scripts here.
func scriptRequest(r *http.Request) bool {
	m := r.Header.Get("Sec-Fetch-Mode")
	return m != "" && m != "navigate"
}

// handleRoot leads / to the dashboard at ui/, keeping a status filter.
func handleRoot(w http.ResponseWriter, r *http.Request) {
	loc := "ui/"
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	redirect(w, loc)
}

// handleHome serves /ui/: the sign-in form, or the session list with a status filter.
func (s *Server) handleHome(w http.ResponseWriter, r *http.Request) {
	si, key := s.signedIn(r)
	if si == nil {
		s.page(w, r, http.StatusOK, "login.html", "../", map[string]any{})
		return
	}
	data := map[string]any{"CSRF": si.csrf, "ProjectID": key.ProjectID, "Statuses": statuses}
	var f bb.SessionFilter
	if v := r.URL.Query().Get("status"); v != "" {
		st, err := bb.ParseStatus(v)
		if err != nil {
			data["Error"] = bb.MessageOf(err)
		} else {
			f.Status = st
			data["Status"] = string(st)
		}
	}
	list, err := s.sessions.Sessions(r.Context(), key.ProjectID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data["Sessions"] = list
	s.page(w, r, http.StatusOK, "sessions.html", "../", data)
}

// handleLogin signs in with an API key posted by the sign-in form. The key is never
// put in a URL or a log; only a random id goes in the cookie.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) || scriptRequest(r) {
		s.writeError(w, r, bb.Errorf(bb.CodeForbidden, "cross-site sign-in refused"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, bb.Errorf(bb.CodeInvalid, "the form could not be read"))
		return
	}
	apiKey := strings.TrimSpace(r.PostForm.Get("apiKey"))
	if _, err := s.sessions.Authenticate(r.Context(), apiKey); err != nil {
		if bb.CodeOf(err) != bb.CodeUnauthorized {
			s.writeError(w, r, err)
			return
		}
		s.page(w, r, http.StatusUnauthorized, "login.html", "../", map[string]any{"Error": "That API key is not valid."})
		return
	}
	cookie, _ := s.signins.create(apiKey, time.Now())
	setCookie(w, cookie, int(s.cfg.SignInTTL.Seconds()), s.secure(r))
	redirect(w, "./")
}

// checkForm checks a signed-in, state-changing form post: same origin and CSRF token.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) (*signin, *bb.APIKey, bool) {
	if scriptRequest(r) {
		s.writeError(w, r, bb.Errorf(bb.CodeForbidden, "the dashboard's forms are posted by the dashboard, not by scripts"))
		return nil, nil, false
	}
	si, key := s.signedIn(r)
	if si == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeUnauthorized, "sign in first"))
		return nil, nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameOrigin(r) || r.ParseForm() != nil || !si.validCSRF(r.PostForm.Get("csrf")) {
		s.writeError(w, r, bb.Errorf(bb.CodeForbidden, "the form's CSRF token is missing or wrong; reload the page"))
		return nil, nil, false
	}
	return si, key, true
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.checkForm(w, r); !ok {
		return
	}
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.signins.remove(r.Context(), c.Value, time.Now()); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	setCookie(w, "", -1, s.secure(r))
	redirect(w, "./")
}

// handleSessionPage shows a session: its details, the live view and pages while it
// runs, and links to its logs and downloads.
func (s *Server) handleSessionPage(w http.ResponseWriter, r *http.Request) {
	si, key := s.signedIn(r)
	if si == nil {
		redirect(w, "../")
		return
	}
	sess, err := s.sessions.Session(r.Context(), key.ProjectID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	data := map[string]any{"CSRF": si.csrf, "Session": sess}
	if sess.Live() {
		lv, err := s.sessions.LiveView(r.Context(), key.ProjectID, sess.ID, 0, false)
		if err != nil {
			data["LiveError"] = bb.MessageOf(err)
		} else {
			data["Live"] = lv.URLs(s.publicBase(r))
		}
	}
	s.page(w, r, http.StatusOK, "session.html", "../../", data)
}

func (s *Server) handleRelease(w http.ResponseWriter, r *http.Request) {
	_, key, ok := s.checkForm(w, r)
	if !ok {
		return
	}
	sess, err := s.sessions.ReleaseSession(r.Context(), key.ProjectID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	redirect(w, "../"+sess.ID)
}

// handleArtifact serves a session's logs, downloads or recording from the REST API
// (GET /v1/sessions/{id}/{artifact}) with the signed-in key, so that plain links work.
func (s *Server) handleArtifact(w http.ResponseWriter, r *http.Request) {
	artifact := r.PathValue("artifact")
	switch artifact {
	case "logs", "downloads", "recording":
	default:
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "no such session page"))
		return
	}
	si, _ := s.signedIn(r)
	if si == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeUnauthorized, "sign in first"))
		return
	}
	if s.cfg.API == nil {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "the API is not available here"))
		return
	}
	id := r.PathValue("id")
	if !bb.ValidID(id) {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "Session not found"))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/v1/sessions/"+id+"/"+artifact, nil)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	req.Header.Set("X-BB-API-Key", si.apiKey)
	req.Header.Set("Accept", "application/json")
	if artifact == "downloads" {
		req.Header.Set("Accept", "application/zip")
		w.Header().Set("Content-Disposition", `attachment; filename="`+id+`-downloads.zip"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	s.cfg.API.ServeHTTP(w, req)
}
