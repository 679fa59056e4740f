package storetest

import (
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// Run runs the contract suite against the stores open returns. open is called once per
// subtest and must return a ready (migrated) store that it closes in t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) bb.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st bb.Store)
	}{
		{"SessionRoundTrip", testSessionRoundTrip},
		{"SessionErrors", testSessionErrors},
		{"ConcurrencyLimit", testConcurrencyLimit},
		{"ConcurrencyRace", testConcurrencyRace},
		{"SessionsFilter", testSessionsFilter},
		{"SessionsEndedSince", testSessionsEndedSince},
		{"SessionsMetadata", testSessionsMetadata},
		{"UpdateSession", testUpdateSession},
		{"UpdateSessionAtomic", testUpdateSessionAtomic},
		{"Projects", testProjects},
		{"Usage", testUsage},
		{"APIKeys", testAPIKeys},
		{"SettingOrInit", testSettingOrInit},
		{"NotFound", testNotFound},
		{"Artifacts", testArtifacts},
		{"ContextsAndExtensions", testContextsAndExtensions},
		{"ContextWriteBacks", testContextWriteBacks}, // writeback.go
		{"Certificates", testCertificates},           // certificate.go
		{"Webhooks", testWebhooks},
		{"WebhookOutbox", testWebhookOutbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// base is the time of the fixtures: whole milliseconds, as stores keep them.
var base = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// bigLimit is a concurrency limit fixtures never reach.
const bigLimit = 1 << 20

// newProject creates a project with the given concurrency limit.
func newProject(t *testing.T, st bb.Store, concurrency int) *bb.Project {
	t.Helper()
	p := &bb.Project{
		ID:             bb.NewID(),
		Name:           "project " + t.Name(),
		OwnerID:        "owner",
		DefaultTimeout: bb.DefaultProjectTimeout,
		Concurrency:    concurrency,
		CreatedAt:      base,
		UpdatedAt:      base,
	}
	if err := st.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return p
}

// newSession returns (without storing it) a PENDING session of p created at created.
func newSession(p *bb.Project, created time.Time) *bb.Session {
	return &bb.Session{
		ID:        bb.NewID(),
		ProjectID: p.ID,
		Status:    bb.StatusPending,
		CreatedAt: created,
		UpdatedAt: created,
		StartedAt: created,
		ExpiresAt: created.Add(time.Duration(p.DefaultTimeout) * time.Second),
		Region:    bb.RegionUSWest2,
		Timeout:   p.DefaultTimeout,
		NodeID:    "node",
	}
}

// createSession stores s, failing the test on error.
func createSession(t *testing.T, st bb.Store, s *bb.Session) *bb.Session {
	t.Helper()
	if err := st.CreateSession(t.Context(), s, bigLimit); err != nil {
		t.Fatalf("CreateSession(%s): %v", s.ID, err)
	}
	return s
}

// ids returns the ids of ss, in order.
func ids(ss []*bb.Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
