package liveview

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	bb "github.com/browserd/browserd"
)

// This file is the project page (issue 19): charts of the signed-in key's project per
// UTC day, computed here from its sessions live in the window (Manager.Sessions with
// SessionFilter.EndedSince) and drawn by the page's script (uPlot).

// projectDays bounds the days the project page charts.
const (
	defaultProjectDays = 30
	maxProjectDays     = 90
)

// projectUsage is the project page's data: one value per day in Days (each the UTC
// midnight starting it, Unix seconds).
type projectUsage struct {
	ProjectID string  `json:"projectId"`
	Days      []int64 `json:"days"`
	// Sessions counts the sessions created each day by their status now (final, or
	// RUNNING/PENDING for live ones).
	Sessions map[bb.SessionStatus][]int `json:"sessions"`
	// BrowserMinutes is the browser time of each day: a session's run (start to end,
	// or now) split over the days it spans.
	BrowserMinutes []float64 `json:"browserMinutes"`
	// PeakConcurrency is the most sessions live at once each day; Limit is the
	// project's concurrency limit.
	PeakConcurrency []int `json:"peakConcurrency"`
	Limit           int   `json:"limit"`
	// ProxyBytes is the session proxy's bytes of the sessions that ended each day.
	ProxyBytes []int64 `json:"proxyBytes"`
}

// computeProjectUsage charts sessions over days UTC days ending with now's.
func computeProjectUsage(sessions []*bb.Session, days int, now time.Time) projectUsage {
	now = now.UTC()
	last := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := last.AddDate(0, 0, -(days - 1))
	u := projectUsage{Days: make([]int64, days), Sessions: map[bb.SessionStatus][]int{},
		BrowserMinutes: make([]float64, days), PeakConcurrency: make([]int, days), ProxyBytes: make([]int64, days)}
	for i := range days {
		u.Days[i] = first.AddDate(0, 0, i).Unix()
	}
	dayOf := func(t time.Time) int {
		if t.Before(first) {
			return -1
		}
		return int(t.Sub(first) / (24 * time.Hour))
	}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, s := range sessions {
		if d := dayOf(s.CreatedAt.UTC()); d >= 0 && d < days {
			if u.Sessions[s.Status] == nil {
				u.Sessions[s.Status] = make([]int, days)
			}
			u.Sessions[s.Status][d]++
		}
		start, end := s.StartedAt, s.EndedAt
		if start.IsZero() {
			start = s.CreatedAt
		}
		if end.IsZero() {
			end = now
		}
		if !end.After(start) {
			continue
		}
		if !s.EndedAt.IsZero() {
			if d := dayOf(s.EndedAt.UTC()); d >= 0 && d < days {
				u.ProxyBytes[d] += s.ProxyBytes
			}
		}
		edges = append(edges, edge{start, 1}, edge{end, -1})
		for t := start.UTC(); t.Before(end); {
			next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			stop := next
			if next.After(end) {
				stop = end
			}
			if d := dayOf(t); d >= 0 && d < days {
				u.BrowserMinutes[d] += stop.Sub(t).Minutes()
			}
			t = stop
		}
	}
	// The peak of each day: a sweep over starts and ends (an end before a start at the
	// same instant), the running count's maximum within the day, and the count the day
	// began with.
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	live := 0
	for _, e := range edges {
		live += e.delta
		if d := dayOf(e.at.UTC()); d >= 0 && d < days && live > u.PeakConcurrency[d] {
			u.PeakConcurrency[d] = live
		}
	}
	// A day no session started or ended in still had the sessions live across it.
	live = 0
	j := 0
	for i := range days {
		dayStart := first.AddDate(0, 0, i)
		for j < len(edges) && edges[j].at.Before(dayStart) {
			live += edges[j].delta
			j++
		}
		u.PeakConcurrency[i] = max(u.PeakConcurrency[i], live)
	}
	return u
}

// handleProjectPage serves the project page (its script fetches handleProjectUsage).
func (s *Server) handleProjectPage(w http.ResponseWriter, r *http.Request) {
	si, key := s.signedIn(r)
	if si == nil {
		redirect(w, "./")
		return
	}
	w.Header().Set("Content-Security-Policy", inspectorCSP)
	s.page(w, r, http.StatusOK, "project.html", "../", map[string]any{
		"CSRF": si.csrf, "ProjectID": key.ProjectID, "Title": "Project · ", "Wide": true})
}

// handleProjectUsage serves GET /ui/api/project?days=N (1..90, default 30).
func (s *Server) handleProjectUsage(w http.ResponseWriter, r *http.Request) {
	key := s.apiKey(w, r)
	if key == nil {
		return
	}
	days := defaultProjectDays
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxProjectDays {
			s.writeError(w, r, bb.Errorf(bb.CodeInvalid, "days must be a number from 1 to %d", maxProjectDays))
			return
		}
		days = n
	}
	p, err := s.sessions.Project(r.Context(), key.ProjectID, key.ProjectID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Only the sessions live in the window: those that ended before it chart nothing.
	since := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -(days - 1))
	list, err := s.sessions.Sessions(r.Context(), key.ProjectID, bb.SessionFilter{EndedSince: since})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := computeProjectUsage(list, days, time.Now())
	u.ProjectID, u.Limit = p.ID, p.Concurrency
	writeData(w, u)
}
