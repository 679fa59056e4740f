package httpapi

import (
	"encoding/json"
	"net/http"

	bb "github.com/browserd/browserd"
)

// handleCreateSession serves POST /v1/sessions (spec §3.1).
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeBody(s, w, r, bb.DecodeCreateSessionRequest)
	if !ok {
		return
	}
	if s.profiles == nil && (req.Settings.Context != nil || req.ExtensionID != "") {
		s.writeError(w, r, errProfilesOff) // the Manager would not look at them
		return
	}
	sess, err := s.sessions.CreateSession(r.Context(), projectIDOf(r.Context()), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, s.withConnection(r, sess))
}

// handleListSessions serves GET /v1/sessions (spec §3.2).
func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	f, err := parseSessionFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.sessions.Sessions(r.Context(), projectIDOf(r.Context()), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireSessions(list))
}

// handleGetSession serves GET /v1/sessions/{id} (spec §3.3).
func (s *Server) handleGetSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions.Session(r.Context(), projectIDOf(r.Context()), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !sess.Live() {
		s.writeJSON(w, r, http.StatusOK, wireSessionConnect{wireSession: toWireSession(sess)})
		return
	}
	s.writeJSON(w, r, http.StatusOK, s.withConnection(r, sess))
}

// handleUpdateSession serves POST /v1/sessions/{id}: REQUEST_RELEASE (spec §3.4, §5.4).
func (s *Server) handleUpdateSession(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	keyProjectID := projectIDOf(r.Context())
	if err := decodeUpdateSession(body, keyProjectID); err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.sessions.ReleaseSession(r.Context(), keyProjectID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, toWireSession(sess))
}

// withConnection returns sess with its connectUrl, seleniumRemoteUrl and signingKey.
func (s *Server) withConnection(r *http.Request, sess *bb.Session) wireSessionConnect {
	key := s.sessions.SigningKey(sess.ID)
	connectURL, seleniumURL := connectionURLs(s.publicBase(r), key)
	return wireSessionConnect{
		wireSession:       toWireSession(sess),
		ConnectURL:        connectURL,
		SeleniumRemoteURL: seleniumURL,
		SigningKey:        key,
	}
}

// parseSessionFilter reads the status and q filters of GET /v1/sessions. An empty value
// is the same as none.
func parseSessionFilter(r *http.Request) (bb.SessionFilter, error) {
	var f bb.SessionFilter
	query := r.URL.Query()
	if v := query.Get("status"); v != "" {
		st, err := bb.ParseStatus(v)
		if err != nil {
			return f, err
		}
		f.Status = st
	}
	if v := query.Get("q"); v != "" {
		mq, err := bb.ParseMetadataQuery(v)
		if err != nil {
			return f, err
		}
		f.Metadata = mq
	}
	return f, nil
}

// decodeUpdateSession validates a POST /v1/sessions/{id} body: status must be
// REQUEST_RELEASE and projectId, when given, the key's project (spec §1.2: 401
// "Unauthorized Project ID"). Other fields are ignored.
func decodeUpdateSession(body []byte, keyProjectID string) error {
	fields, err := decodeObject(body)
	if err != nil {
		return err
	}
	raw, ok := fields["status"]
	if !ok {
		return bb.Errorf(bb.CodeInvalid, "body must have required property 'status'")
	}
	var status string
	if err := json.Unmarshal(raw, &status); err != nil || status != "REQUEST_RELEASE" {
		return bb.Errorf(bb.CodeInvalid, "body/status must be equal to REQUEST_RELEASE")
	}
	var projectID *string
	if raw, ok := fields["projectId"]; ok {
		if err := json.Unmarshal(raw, &projectID); err != nil {
			return bb.Errorf(bb.CodeInvalid, "body/projectId must be a string")
		}
	}
	if projectID != nil && *projectID != "" && *projectID != keyProjectID {
		return &bb.Error{Code: bb.CodeUnauthorized, Message: "Unauthorized Project ID", NoRetry: true}
	}
	return nil
}
