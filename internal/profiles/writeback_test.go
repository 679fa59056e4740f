package profiles_test

import (
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/profiles"
)

// TestCreateWaitsForAnotherNodesWriteBack: a write-back of the context recorded in the
// store (as another node of a cluster records one while its session's profile is being
// saved) holds a create on that context until the record ends; a persisting session's
// end leaves no record behind.
func TestCreateWaitsForAnotherNodesWriteBack(t *testing.T) {
	e := newEnv(t, nil, profiles.Config{})
	ctx := t.Context()
	c, _, err := e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.BeginContextWriteBack(ctx, c.ID, "a-session-of-another-node", time.Minute); err != nil {
		t.Fatal(err)
	}
	req := bb.CreateSessionRequest{Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: c.ID, Persist: true}}}
	type result struct {
		s   *bb.Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := e.m.CreateSession(ctx, e.p.ID, req)
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the create went on during another node's write-back: %v, %v", r.s, r.err)
	case <-time.After(500 * time.Millisecond): // it waits as long as the record lasts
	}
	if err := e.db.EndContextWriteBack(ctx, c.ID, "a-session-of-another-node"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("create after the write-back ended: %v", r.err)
	}
	// The session's own end leaves no record behind.
	if _, err := e.m.ReleaseSession(ctx, e.p.ID, r.s.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		n, err := e.db.ContextWriteBacks(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
}
