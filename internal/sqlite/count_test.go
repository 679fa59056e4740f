package sqlite_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

func TestSessionCounts(t *testing.T) {
	db := sqlitetest.Open(t)
	if err := db.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	got, err := db.SessionCounts(t.Context())
	if err != nil || len(got) != 0 {
		t.Fatalf("SessionCounts of an empty store = %v, %v; want none", got, err)
	}
	p1, _ := sqlitetest.Project(t, db, 10)
	p2, _ := sqlitetest.Project(t, db, 10)
	now := time.Now().UTC().Truncate(time.Millisecond)
	add := func(p *bb.Project, status bb.SessionStatus) {
		t.Helper()
		s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: status, CreatedAt: now, UpdatedAt: now,
			StartedAt: now, ExpiresAt: now.Add(time.Hour), Region: bb.RegionUSWest2, Timeout: 3600}
		if status.Terminal() {
			s.EndedAt = now
		}
		if err := db.CreateSession(t.Context(), s, 10); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
	add(p1, bb.StatusRunning)
	add(p1, bb.StatusRunning)
	add(p1, bb.StatusCompleted)
	add(p2, bb.StatusError)
	got, err = db.SessionCounts(t.Context())
	if err != nil {
		t.Fatalf("SessionCounts: %v", err)
	}
	want := []bb.SessionCount{
		{ProjectID: p1.ID, Status: bb.StatusCompleted, N: 1},
		{ProjectID: p1.ID, Status: bb.StatusRunning, N: 2},
		{ProjectID: p2.ID, Status: bb.StatusError, N: 1},
	}
	if p2.ID < p1.ID {
		want = append(want[2:], want[:2]...)
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("SessionCounts (-got +want):\n%s", diff)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(t.Context()); err == nil {
		t.Error("Ping of a closed database = nil error")
	}
}
