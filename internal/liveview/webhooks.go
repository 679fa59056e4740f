package liveview

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"

	bb "github.com/browserd/browserd"
)

// The dashboard's webhook pages read the REST API (Config.API) with the signed-in key,
// as the artifact links do: the API is the one place that decides what a key may see
// (GET /v1/webhooks, GET /v1/webhooks/{id}/deliveries), and this package needs no
// interface of the webhook service.

// dashWebhook and dashDelivery are the parts of the API's answers the pages show.
type dashWebhook struct {
	ID         string   `json:"id"`
	Endpoint   string   `json:"endpoint"`
	EventTypes []string `json:"eventTypes"`
	CreatedAt  string   `json:"createdAt"`
}

type dashDelivery struct {
	ID            string  `json:"id"`
	EventID       string  `json:"eventId"`
	EventType     string  `json:"eventType"`
	Status        string  `json:"status"`
	CreatedAt     string  `json:"createdAt"`
	NextAttemptAt *string `json:"nextAttemptAt"`
	Attempts      []struct {
		Attempt    int     `json:"attempt"`
		At         string  `json:"at"`
		DurationMs int64   `json:"durationMs"`
		StatusCode *int    `json:"statusCode"`
		Error      *string `json:"error"`
	} `json:"attempts"`
}

// apiGet answers a GET of the REST API with the signed-in key and decodes a 200 into
// out; another status is returned as the API's error message.
func (s *Server) apiGet(r *http.Request, apiKey, path string, q url.Values, out any) error {
	if s.cfg.API == nil {
		return bb.Errorf(bb.CodeNotFound, "the API is not available here")
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	req.Header.Set("X-BB-API-Key", apiKey)
	rec := httptest.NewRecorder() // the API's answers here are small pages
	s.cfg.API.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e) // a body that is not the error shape shows the status
		if e.Message == "" {
			e.Message = http.StatusText(rec.Code)
		}
		code := bb.CodeInternal
		switch rec.Code {
		case http.StatusNotFound:
			code = bb.CodeNotFound
		case http.StatusBadRequest:
			code = bb.CodeInvalid
		case http.StatusNotImplemented, http.StatusServiceUnavailable:
			code = bb.CodeUnavailable
		}
		return &bb.Error{Code: code, Message: e.Message}
	}
	return json.Unmarshal(rec.Body.Bytes(), out)
}

// handleWebhooks serves /ui/webhooks: the project's webhooks, a page at a time.
func (s *Server) handleWebhooks(w http.ResponseWriter, r *http.Request) {
	si, key := s.signedIn(r)
	if si == nil {
		redirect(w, "./")
		return
	}
	var page struct {
		Data       []dashWebhook `json:"data"`
		NextCursor *string       `json:"nextCursor"`
	}
	q := url.Values{"limit": {"50"}}
	if c := r.URL.Query().Get("cursor"); c != "" {
		q.Set("cursor", c)
	}
	data := map[string]any{"CSRF": si.csrf, "Title": "Webhooks · ", "ProjectID": key.ProjectID}
	if err := s.apiGet(r, si.apiKey, "/v1/webhooks", q, &page); err != nil {
		data["Error"] = bb.MessageOf(err)
	}
	data["Webhooks"], data["Next"] = page.Data, page.NextCursor
	s.page(w, r, http.StatusOK, "webhooks.html", "../", data)
}

// handleWebhookPage serves /ui/webhooks/{id}: the webhook's deliveries, newest first,
// each with its attempts.
func (s *Server) handleWebhookPage(w http.ResponseWriter, r *http.Request) {
	si, _ := s.signedIn(r)
	if si == nil {
		redirect(w, "../")
		return
	}
	id := r.PathValue("id")
	if !bb.ValidID(id) {
		s.writeError(w, r, bb.Errorf(bb.CodeNotFound, "webhook %q not found", id))
		return
	}
	var hook dashWebhook
	if err := s.apiGet(r, si.apiKey, "/v1/webhooks/"+id, nil, &hook); err != nil {
		s.writeError(w, r, err)
		return
	}
	var page struct {
		Data       []dashDelivery `json:"data"`
		NextCursor *string        `json:"nextCursor"`
	}
	q := url.Values{"limit": {"50"}}
	if c := r.URL.Query().Get("cursor"); c != "" {
		q.Set("cursor", c)
	}
	data := map[string]any{"CSRF": si.csrf, "Title": "Webhook · ", "Webhook": hook}
	if err := s.apiGet(r, si.apiKey, "/v1/webhooks/"+id+"/deliveries", q, &page); err != nil {
		data["Error"] = bb.MessageOf(err)
	}
	data["Deliveries"], data["Next"] = page.Data, page.NextCursor
	s.page(w, r, http.StatusOK, "webhook.html", "../../", data)
}
