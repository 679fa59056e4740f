package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// testSessionRoundTrip checks that every field comes back as it was stored.
func testSessionRoundTrip(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	cest := time.FixedZone("CEST", 2*60*60)
	full := &bb.Session{
		ID:          bb.NewID(),
		ProjectID:   p.ID,
		Status:      bb.StatusError,
		CreatedAt:   base.In(cest),
		UpdatedAt:   base.Add(2*time.Minute + 7*time.Millisecond),
		StartedAt:   base.Add(1500 * time.Millisecond),
		ExpiresAt:   base.Add(time.Hour + 1500*time.Millisecond),
		EndedAt:     base.Add(2 * time.Minute),
		EndReason:   "crash: signal: killed",
		KeepAlive:   true,
		Region:      bb.RegionEUCentral1,
		Timeout:     3600,
		ProxyBytes:  1 << 40,
		ContextID:   bb.NewID(),
		ExtensionID: bb.NewID(),
		// Verbatim: key order and duplicates are kept (jsonb would not keep them).
		UserMetadata:    json.RawMessage(`{"z":"last","a":{"b":"c"},"n":1}`),
		BrowserSettings: json.RawMessage(`{"viewport":{"width":1920,"height":1080},"unknown":[1,{"x":null}],"os":"linux"}`),
		Settings: bb.BrowserSettings{
			Context:                 &bb.ContextSettings{ID: bb.NewID(), Persist: true},
			ExtensionID:             "ext",
			Viewport:                &bb.Viewport{Width: 1920, Height: 1080},
			BlockAds:                true,
			SolveCaptchas:           ptr(false),
			CaptchaImageSelector:    "#img",
			CaptchaInputSelector:    "#in",
			RecordSession:           ptr(true),
			LogSession:              ptr(false),
			AdvancedStealth:         true,
			Verified:                true,
			OS:                      "linux",
			AllowedDomains:          []string{"example.com", "*.example.org"},
			IgnoreCertificateErrors: true,
			Fingerprint:             json.RawMessage(`{"devices":["desktop"],"locales":["en-US"]}`),
		},
		Request:     json.RawMessage(`{"keepAlive":true,"browserSettings":{"os":"linux"},"future":"field"}`),
		NodeID:      "node-a",
		PID:         4242,
		AvgCPUUsage: ptr(int64(42)),
		MemoryUsage: ptr(int64(512 << 20)),
	}
	minimal := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusPending, CreatedAt: base}
	zeros := newSession(p, base)
	zeros.AvgCPUUsage, zeros.MemoryUsage = ptr(int64(0)), ptr(int64(0)) // measured zero is not "unmeasured"
	zeros.Settings = bb.BrowserSettings{SolveCaptchas: ptr(false), Viewport: &bb.Viewport{}}

	tests := []struct {
		name string
		s    *bb.Session
	}{
		{"every field", full},
		{"minimal", minimal},
		{"zero measurements", zeros},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := *tt.s // CreateSession must not need to change its argument
			if err := st.CreateSession(t.Context(), tt.s, bigLimit); err != nil {
				t.Fatalf("CreateSession: %v", err)
			}
			got, err := st.Session(t.Context(), tt.s.ID)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("Session after CreateSession (-want +got):\n%s", diff)
			}
			list, err := st.Sessions(t.Context(), bb.SessionFilter{ProjectID: p.ID})
			if err != nil {
				t.Fatalf("Sessions: %v", err)
			}
			i := slices.IndexFunc(list, func(s *bb.Session) bool { return s.ID == tt.s.ID })
			if i < 0 {
				t.Fatalf("Sessions does not list %s", tt.s.ID)
			}
			if diff := cmp.Diff(&want, list[i]); diff != "" {
				t.Errorf("Sessions element (-want +got):\n%s", diff)
			}
		})
	}
}

// testSessionErrors checks the errors of CreateSession and Session.
func testSessionErrors(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	existing := createSession(t, st, newSession(p, base))
	orphan := newSession(p, base)
	orphan.ProjectID = bb.NewID()
	dup := newSession(p, base)
	dup.ID = existing.ID

	tests := []struct {
		name string
		s    *bb.Session
		want bb.ErrorCode
	}{
		{"unknown project", orphan, bb.CodeNotFound},
		{"duplicate id", dup, bb.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.CreateSession(t.Context(), tt.s, bigLimit)
			if got := bb.CodeOf(err); got != tt.want {
				t.Errorf("CreateSession = %v (code %q); want code %q", err, got, tt.want)
			}
		})
	}
	got, err := st.Session(t.Context(), existing.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if diff := cmp.Diff(existing, got); diff != "" {
		t.Errorf("session changed by a failed duplicate create (-want +got):\n%s", diff)
	}
}

// testConcurrencyLimit checks which sessions count against a project's limit.
func testConcurrencyLimit(t *testing.T, st bb.Store) {
	p := newProject(t, st, 2)
	other := newProject(t, st, 2)
	running := newSession(p, base)
	running.Status = bb.StatusRunning
	for _, s := range []*bb.Session{
		newSession(p, base), // PENDING
		running,
		newSession(other, base), // another project's
	} {
		if err := st.CreateSession(t.Context(), s, 2); err != nil {
			t.Fatalf("CreateSession below the limit: %v", err)
		}
	}

	tests := []struct {
		name  string
		limit int
		want  *bb.Error // nil for success
	}{
		{"at the limit", 2, bb.ConcurrencyLimitError(2, 2)},
		{"raised limit", 5, nil},
		{"lowered limit", 1, bb.ConcurrencyLimitError(1, 3)},
	}
	for _, tt := range tests {
		err := st.CreateSession(t.Context(), newSession(p, base), tt.limit)
		if diff := cmp.Diff(tt.want, asError(err)); diff != "" {
			t.Errorf("%s: CreateSession(limit %d) error (-want +got):\n%s", tt.name, tt.limit, diff)
		}
	}

	// Ended sessions free their slot, whatever the reason they ended.
	for _, status := range []bb.SessionStatus{bb.StatusCompleted, bb.StatusError, bb.StatusTimedOut} {
		live, err := st.Sessions(t.Context(), bb.SessionFilter{ProjectID: p.ID, LiveOnly: true})
		if err != nil {
			t.Fatalf("Sessions: %v", err)
		}
		if _, err := st.UpdateSession(t.Context(), live[0].ID, func(s *bb.Session) error {
			s.Status, s.EndedAt = status, base.Add(time.Minute)
			return nil
		}); err != nil {
			t.Fatalf("UpdateSession: %v", err)
		}
	}
	if err := st.CreateSession(t.Context(), newSession(p, base), 2); err != nil {
		t.Errorf("CreateSession after sessions ended: %v", err)
	}
}

// testConcurrencyRace races creates for the last slots: exactly limit of them win.
func testConcurrencyRace(t *testing.T, st bb.Store) {
	const racers, limit = 20, 3
	p := newProject(t, st, limit)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = st.CreateSession(t.Context(), newSession(p, base.Add(time.Duration(i)*time.Millisecond)), limit)
		})
	}
	close(start)
	wg.Wait()

	ok := 0
	want := bb.ConcurrencyLimitError(limit, limit)
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		if diff := cmp.Diff(want, asError(err)); diff != "" {
			t.Errorf("racing CreateSession error (-want +got):\n%s", diff)
		}
	}
	if ok != limit {
		t.Errorf("%d of %d racing creates succeeded; want %d", ok, racers, limit)
	}
	live, err := st.Sessions(t.Context(), bb.SessionFilter{ProjectID: p.ID, LiveOnly: true})
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	if len(live) != limit {
		t.Errorf("%d live sessions stored; want %d", len(live), limit)
	}
}

// asError returns the *bb.Error in err's chain, or one with code CodeInternal and err's
// text as its message when there is none; nil for nil.
func asError(err error) *bb.Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*bb.Error](err); ok {
		return e
	}
	return &bb.Error{Code: bb.CodeInternal, Message: err.Error()}
}

// testSessionsFilter checks the filters other than metadata, and the order.
func testSessionsFilter(t *testing.T, st bb.Store) {
	pa, pb := newProject(t, st, bigLimit), newProject(t, st, bigLimit)
	n1, n2 := "node-1-"+bb.NewID(), "node-2-"+bb.NewID()
	mk := func(p *bb.Project, status bb.SessionStatus, node string, created time.Time) *bb.Session {
		s := newSession(p, created)
		s.Status, s.NodeID = status, node
		return createSession(t, st, s)
	}
	a1 := mk(pa, bb.StatusPending, n1, base.Add(1*time.Second))
	a2 := mk(pa, bb.StatusRunning, n2, base.Add(2*time.Second))
	a3 := mk(pa, bb.StatusCompleted, n1, base.Add(3*time.Second))
	a4 := mk(pa, bb.StatusError, n2, base.Add(4*time.Second))
	a5 := mk(pa, bb.StatusTimedOut, n1, base.Add(5*time.Second))
	// Two sessions created in the same millisecond are ordered by id.
	a6 := mk(pa, bb.StatusRunning, n1, base.Add(6*time.Second))
	a7 := mk(pa, bb.StatusRunning, n1, base.Add(6*time.Second))
	if a7.ID < a6.ID {
		a6, a7 = a7, a6
	}
	b1 := mk(pb, bb.StatusRunning, n1, base.Add(7*time.Second))

	tests := []struct {
		name string
		f    bb.SessionFilter
		want []*bb.Session
	}{
		{"project", bb.SessionFilter{ProjectID: pa.ID}, []*bb.Session{a6, a7, a5, a4, a3, a2, a1}},
		{"other project", bb.SessionFilter{ProjectID: pb.ID}, []*bb.Session{b1}},
		{"unknown project", bb.SessionFilter{ProjectID: bb.NewID()}, nil},
		{"status", bb.SessionFilter{ProjectID: pa.ID, Status: bb.StatusRunning}, []*bb.Session{a6, a7, a2}},
		{"terminal status", bb.SessionFilter{ProjectID: pa.ID, Status: bb.StatusTimedOut}, []*bb.Session{a5}},
		{"live", bb.SessionFilter{ProjectID: pa.ID, LiveOnly: true}, []*bb.Session{a6, a7, a2, a1}},
		{"live and ended status", bb.SessionFilter{ProjectID: pa.ID, LiveOnly: true, Status: bb.StatusCompleted}, nil},
		{"node", bb.SessionFilter{ProjectID: pa.ID, NodeID: n1}, []*bb.Session{a6, a7, a5, a3, a1}},
		{"node across projects", bb.SessionFilter{NodeID: n1}, []*bb.Session{b1, a6, a7, a5, a3, a1}},
		{"live on node", bb.SessionFilter{NodeID: n1, LiveOnly: true}, []*bb.Session{b1, a6, a7, a1}},
		{"status on node", bb.SessionFilter{NodeID: n2, Status: bb.StatusError}, []*bb.Session{a4}},
		{"unknown node", bb.SessionFilter{NodeID: "node-" + bb.NewID()}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Sessions(t.Context(), tt.f)
			if err != nil {
				t.Fatalf("Sessions: %v", err)
			}
			if diff := cmp.Diff(ids(tt.want), ids(got)); diff != "" {
				t.Errorf("Sessions(%+v) ids (-want +got):\n%s", tt.f, diff)
			}
		})
	}
}

// testSessionsEndedSince: SessionFilter.EndedSince keeps the live sessions and those
// that ended at or after it.
func testSessionsEndedSince(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	mk := func(created, ended time.Time) *bb.Session {
		s := newSession(p, created)
		if !ended.IsZero() {
			s.Status, s.EndedAt = bb.StatusCompleted, ended
		}
		return createSession(t, st, s)
	}
	old := mk(base, base.Add(time.Minute))
	edge := mk(base.Add(time.Second), base.Add(time.Hour))
	recent := mk(base.Add(2*time.Second), base.Add(2*time.Hour))
	live := mk(base.Add(3*time.Second), time.Time{})
	for _, tt := range []struct {
		since time.Time
		want  []*bb.Session
	}{
		{time.Time{}, []*bb.Session{live, recent, edge, old}},
		{base.Add(time.Hour), []*bb.Session{live, recent, edge}}, // at the instant: kept
		{base.Add(time.Hour + time.Millisecond), []*bb.Session{live, recent}},
		{base.Add(24 * time.Hour), []*bb.Session{live}},
	} {
		got, err := st.Sessions(t.Context(), bb.SessionFilter{ProjectID: p.ID, EndedSince: tt.since})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids(tt.want), ids(got)); diff != "" {
			t.Errorf("Sessions(EndedSince %v) ids (-want +got):\n%s", tt.since, diff)
		}
	}
}
