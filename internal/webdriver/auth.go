package webdriver

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	bb "github.com/browserd/browserd"
)

// Header names of the two authentication styles (spec/API.md §4.2).
const (
	headerSigningKey = "X-Bb-Signing-Key"
	headerAPIKey     = "X-Bb-Api-Key"
	headerSessionID  = "Session-Id"
)

// maxCredentialLen bounds each credential header; real ones are under 200 bytes.
const maxCredentialLen = 4096

// credentials reads a request's credentials: `x-bb-signing-key`, or `x-bb-api-key` with
// `session-id`. A signing key wins when both styles are present; the legacy
// `enable-proxy` header is ignored. Missing credentials are a 401, partial or oversized
// ones a 400. Messages never contain the credentials.
func credentials(h http.Header) (bb.ConnectCredentials, *wdError) {
	var c bb.ConnectCredentials
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{headerSigningKey, &c.SigningKey},
		{headerAPIKey, &c.APIKey},
		{headerSessionID, &c.SessionID},
	} {
		vs := h.Values(f.name)
		if len(vs) == 0 {
			continue
		}
		for _, v := range vs[1:] {
			if v != vs[0] {
				return c, invalidArgument("header %s is given more than once", f.name)
			}
		}
		if len(vs[0]) > maxCredentialLen {
			return c, invalidArgument("header %s is too long", f.name)
		}
		*f.dst = vs[0]
	}
	switch {
	case c.SigningKey != "":
		return bb.ConnectCredentials{SigningKey: c.SigningKey}, nil
	case c.APIKey != "" && c.SessionID != "":
		return c, nil
	case c.APIKey != "":
		return c, invalidArgument("the session-id header is required with x-bb-api-key")
	}
	return c, newError(http.StatusUnauthorized, errUnknownError,
		"Unauthorized: send the session's signingKey in the x-bb-signing-key header, "+
			"or the x-bb-api-key and session-id headers")
}

// authorize returns the WebDriver session id if the credentials are those of its
// browserd session. A signing key is compared with the session's own in constant time;
// an API key must be valid, of the session's project, and come with the session's id.
// Credentials of another session, and ids that do not exist, both get "invalid session
// id" (404), so that WebDriver session ids reveal nothing.
func (h *Handler) authorize(ctx context.Context, c bb.ConnectCredentials, id string) (*wdSession, *wdError) {
	h.mu.Lock()
	ws := h.wds[id]
	h.mu.Unlock()
	notFound := newError(http.StatusNotFound, errInvalidSessionID,
		"no WebDriver session with this id for the browserd session of the credentials")
	if ws == nil {
		// Still check an API key, so that a bad key is a 401 whatever the id.
		if c.APIKey != "" {
			if _, err := h.cfg.Sessions.Authenticate(ctx, c.APIKey); err != nil {
				return nil, fromBB(err, errUnknownError)
			}
		}
		return nil, notFound
	}
	if c.SigningKey != "" {
		want := h.cfg.Sessions.SigningKey(ws.sessionID)
		if subtle.ConstantTimeCompare([]byte(c.SigningKey), []byte(want)) != 1 {
			return nil, notFound
		}
		return ws, nil
	}
	k, err := h.cfg.Sessions.Authenticate(ctx, c.APIKey)
	if err != nil {
		return nil, fromBB(err, errUnknownError)
	}
	if k.ProjectID != ws.projectID || c.SessionID != ws.sessionID {
		return nil, notFound
	}
	return ws, nil
}

// sessionLookup is the optional part of sessions that says whether a project has a
// session; *bb.Manager has it. Without it, a New Session with an API key is checked for
// the key only before its body is read, and for the session by the attach that follows.
type sessionLookup interface {
	Session(ctx context.Context, projectID, id string) (*bb.Session, error)
}

// authenticate checks a New Session's credentials completely before its body is read,
// so that an unauthenticated request costs no memory (security review F4): a signing
// key's MAC, or an API key and the session of its project the session-id header names.
// Attaching comes later, once the body is known to be valid, so that a refused request
// does not touch the session.
func (h *Handler) authenticate(ctx context.Context, c bb.ConnectCredentials) *wdError {
	if c.SigningKey != "" {
		id, _, ok := strings.Cut(c.SigningKey, ".")
		if !ok || !bb.ValidID(id) ||
			subtle.ConstantTimeCompare([]byte(c.SigningKey), []byte(h.cfg.Sessions.SigningKey(id))) != 1 {
			return newError(http.StatusUnauthorized, errSessionNotCreated, "invalid signingKey")
		}
		return nil
	}
	k, err := h.cfg.Sessions.Authenticate(ctx, c.APIKey)
	if err != nil {
		return fromBB(err, errSessionNotCreated)
	}
	if sl, ok := h.cfg.Sessions.(sessionLookup); ok {
		if _, err := sl.Session(ctx, k.ProjectID, c.SessionID); err != nil {
			return fromBB(err, errSessionNotCreated)
		}
	}
	return nil
}
