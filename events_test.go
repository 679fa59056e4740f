package browserd_test

import (
	"sync"
	"testing"

	bb "github.com/browserd/browserd"
)

// eventLog is an EventSink that keeps what it is told.
type eventLog struct {
	mu     sync.Mutex
	events []bb.Event
}

func (l *eventLog) Emit(e bb.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) types() []bb.EventType {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []bb.EventType
	for _, e := range l.events {
		out = append(out, e.Type)
	}
	return out
}

// TestSessionEvents: a session's create, start and end reach the EventSink once each,
// after the store has them, the end with its final status and reason; a release of an
// ended session emits nothing more.
func TestSessionEvents(t *testing.T) {
	log := &eventLog{}
	e := newEnv(t, 2, nil, bb.ManagerConfig{Events: log})
	s := e.create(t, bb.CreateSessionRequest{KeepAlive: true})
	if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
		t.Fatal(err)
	}
	want := []bb.EventType{bb.EventSessionCreated, bb.EventSessionRunning, bb.EventSessionEnded}
	got := log.types()
	if len(got) != len(want) {
		t.Fatalf("events = %v; want %v", got, want)
	}
	for i := range want {
		ev := log.events[i]
		if ev.Type != want[i] || ev.SessionID != s.ID || ev.ProjectID != e.p.ID || ev.Session == nil || ev.At.IsZero() {
			t.Errorf("event %d = %+v; want %s of %s", i, ev, want[i], s.ID)
		}
	}
	if end := log.events[2].Session; end.Status != bb.StatusCompleted || end.EndReason != "released" || end.EndedAt.IsZero() {
		t.Errorf("ended event's session = %+v; want COMPLETED, released", end)
	}
	if st := log.events[0].Session.Status; st != bb.StatusPending {
		t.Errorf("created event's status = %s; want PENDING", st)
	}
}
