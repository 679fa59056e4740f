package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// testProjects checks project round trips, listing and updates.
func testProjects(t *testing.T, st bb.Store) {
	cest := time.FixedZone("CEST", 2*60*60)
	p1 := &bb.Project{ID: bb.NewID(), Name: "one", OwnerID: "owner-1", DefaultTimeout: 60, Concurrency: 1,
		CreatedAt: base.Add(time.Second).In(cest), UpdatedAt: base.Add(2*time.Second + 3*time.Millisecond)}
	p2 := &bb.Project{ID: bb.NewID(), Name: "two", DefaultTimeout: bb.MaxTimeout, Concurrency: 100,
		CreatedAt: base.Add(2 * time.Second)}
	p0 := &bb.Project{ID: bb.NewID(), Name: "zero", DefaultTimeout: 300, Concurrency: 25, CreatedAt: base}
	for _, p := range []*bb.Project{p1, p2, p0} {
		want := *p
		if err := st.CreateProject(t.Context(), p); err != nil {
			t.Fatalf("CreateProject: %v", err)
		}
		got, err := st.Project(t.Context(), p.ID)
		if err != nil {
			t.Fatalf("Project: %v", err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("Project after CreateProject (-want +got):\n%s", diff)
		}
	}
	if err := st.CreateProject(t.Context(), &bb.Project{ID: p1.ID, Name: "dup", DefaultTimeout: 60, Concurrency: 1}); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("CreateProject(duplicate id) = %v; want code %q", err, bb.CodeConflict)
	}

	all, err := st.Projects(t.Context())
	if err != nil {
		t.Fatalf("Projects: %v", err)
	}
	// Other projects may exist in a shared database: keep ours, in the order listed.
	mine := slices.DeleteFunc(all, func(p *bb.Project) bool {
		return p.ID != p0.ID && p.ID != p1.ID && p.ID != p2.ID
	})
	if diff := cmp.Diff([]*bb.Project{p0, p1, p2}, mine); diff != "" {
		t.Errorf("Projects, oldest first (-want +got):\n%s", diff)
	}

	updated := base.Add(time.Hour)
	got, err := st.UpdateProject(t.Context(), p1.ID, func(p *bb.Project) error {
		p.Name, p.Concurrency, p.DefaultTimeout, p.UpdatedAt = "renamed", 7, 600, updated
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateProject: %v", err)
	}
	want := *p1
	want.Name, want.Concurrency, want.DefaultTimeout, want.UpdatedAt = "renamed", 7, 600, updated
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("UpdateProject result (-want +got):\n%s", diff)
	}
	_, err = st.UpdateProject(t.Context(), p1.ID, func(p *bb.Project) error {
		p.Name = "not written"
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Errorf("UpdateProject(aborting fn) = %v; want %v", err, errAbort)
	}
	stored, err := st.Project(t.Context(), p1.ID)
	if err != nil {
		t.Fatalf("Project: %v", err)
	}
	if diff := cmp.Diff(&want, stored); diff != "" {
		t.Errorf("stored project after UpdateProject (-want +got):\n%s", diff)
	}
}

// testUsage checks the usage arithmetic: each session rounded up to whole minutes, at
// least one, live ones counted up to now.
func testUsage(t *testing.T, st bb.Store) {
	now := base.Add(10 * time.Hour)
	type sess struct {
		started, ended time.Duration // after base; ended < 0: still live
		noStart        bool
		proxyBytes     int64
	}
	tests := []struct {
		name     string
		sessions []sess
		want     bb.ProjectUsage
	}{
		{name: "no sessions", want: bb.ProjectUsage{}},
		{name: "zero seconds", sessions: []sess{{ended: 0}}, want: bb.ProjectUsage{BrowserMinutes: 1}},
		{name: "one second", sessions: []sess{{ended: time.Second}}, want: bb.ProjectUsage{BrowserMinutes: 1}},
		{name: "just under a minute", sessions: []sess{{ended: time.Minute - time.Millisecond}}, want: bb.ProjectUsage{BrowserMinutes: 1}},
		{name: "one minute", sessions: []sess{{ended: time.Minute}}, want: bb.ProjectUsage{BrowserMinutes: 1}},
		{name: "just over a minute", sessions: []sess{{ended: time.Minute + time.Millisecond}}, want: bb.ProjectUsage{BrowserMinutes: 2}},
		{name: "an hour", sessions: []sess{{started: time.Hour, ended: 2 * time.Hour}}, want: bb.ProjectUsage{BrowserMinutes: 60}},
		{name: "live", sessions: []sess{{started: 10*time.Hour - 90*time.Second, ended: -1}}, want: bb.ProjectUsage{BrowserMinutes: 2}},
		{name: "live, started after now", sessions: []sess{{started: 11 * time.Hour, ended: -1}}, want: bb.ProjectUsage{BrowserMinutes: 1}},
		{name: "never started", sessions: []sess{{noStart: true, ended: time.Minute, proxyBytes: 5}}, want: bb.ProjectUsage{ProxyBytes: 5}},
		{
			name: "several",
			sessions: []sess{
				{ended: 30 * time.Second, proxyBytes: 1000},
				{started: time.Minute, ended: 3*time.Minute + time.Second, proxyBytes: 1 << 33},
				{started: 9 * time.Hour, ended: -1},
			},
			want: bb.ProjectUsage{BrowserMinutes: 1 + 3 + 60, ProxyBytes: 1000 + 1<<33},
		},
	}
	// Another project's sessions never count.
	other := newProject(t, st, bigLimit)
	noise := newSession(other, base)
	noise.ProxyBytes = 1 << 20
	createSession(t, st, noise)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProject(t, st, bigLimit)
			for _, ss := range tt.sessions {
				s := newSession(p, base)
				s.StartedAt, s.ProxyBytes = base.Add(ss.started), ss.proxyBytes
				if ss.noStart {
					s.StartedAt = time.Time{}
				}
				if ss.ended >= 0 {
					s.Status, s.EndedAt = bb.StatusCompleted, base.Add(ss.ended)
				} else {
					s.Status = bb.StatusRunning
				}
				createSession(t, st, s)
			}
			got, err := st.Usage(t.Context(), p.ID, now)
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Usage (-want +got):\n%s", diff)
			}
		})
	}
	// Fetches through managed proxies add to the project's proxy bytes, and to no other
	// project's; a project with only fetches has them too.
	t.Run("fetches", func(t *testing.T) {
		ctx := t.Context()
		p := newProject(t, st, bigLimit)
		s := newSession(p, base)
		s.StartedAt, s.ProxyBytes, s.Status, s.EndedAt = base, 500, bb.StatusCompleted, base.Add(time.Minute)
		createSession(t, st, s)
		only := newProject(t, st, bigLimit)
		for _, add := range []struct {
			project string
			n       int64
		}{{p.ID, 1 << 32}, {p.ID, 7}, {only.ID, 3}} {
			if err := st.AddFetchProxyBytes(ctx, add.project, add.n); err != nil {
				t.Fatalf("AddFetchProxyBytes: %v", err)
			}
		}
		for _, c := range []struct {
			project string
			want    bb.ProjectUsage
		}{{p.ID, bb.ProjectUsage{BrowserMinutes: 1, ProxyBytes: 500 + 1<<32 + 7}}, {only.ID, bb.ProjectUsage{ProxyBytes: 3}}} {
			got, err := st.Usage(ctx, c.project, now)
			if err != nil {
				t.Fatalf("Usage: %v", err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("Usage with fetches (-want +got):\n%s", diff)
			}
		}
	})
}

// testAPIKeys checks key round trips, lookup by hash and listing.
func testAPIKeys(t *testing.T, st bb.Store) {
	p, other := newProject(t, st, 1), newProject(t, st, 1)
	k2 := &bb.APIKey{ID: bb.NewID(), ProjectID: p.ID, Name: "second", Hash: bb.HashAPIKey("key-2"), CreatedAt: base.Add(time.Second)}
	k1 := &bb.APIKey{ID: bb.NewID(), ProjectID: p.ID, Name: "first", Hash: bb.HashAPIKey("key-1"), CreatedAt: base}
	k3 := &bb.APIKey{ID: bb.NewID(), ProjectID: other.ID, Hash: bb.HashAPIKey("key-3"), CreatedAt: base}
	for _, k := range []*bb.APIKey{k2, k1, k3} {
		if err := st.CreateAPIKey(t.Context(), k); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
	}

	lookups := []struct {
		name string
		hash []byte
		want *bb.APIKey
	}{
		{"first", bb.HashAPIKey("key-1"), k1},
		{"second", bb.HashAPIKey("key-2"), k2},
		{"other project", bb.HashAPIKey("key-3"), k3},
		{"unknown", bb.HashAPIKey("key-4"), nil},
		{"prefix of a hash", bb.HashAPIKey("key-1")[:16], nil},
		{"empty", nil, nil},
	}
	for _, tt := range lookups {
		t.Run("lookup "+tt.name, func(t *testing.T) {
			got, err := st.APIKeyByHash(t.Context(), tt.hash)
			if tt.want == nil {
				if bb.CodeOf(err) != bb.CodeNotFound {
					t.Errorf("APIKeyByHash = %v, %v; want code %q", got, err, bb.CodeNotFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("APIKeyByHash: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("APIKeyByHash (-want +got):\n%s", diff)
			}
		})
	}

	lists := []struct {
		name      string
		projectID string
		want      []*bb.APIKey
	}{
		{"oldest first", p.ID, []*bb.APIKey{k1, k2}},
		{"other project", other.ID, []*bb.APIKey{k3}},
		{"unknown project", bb.NewID(), nil},
	}
	for _, tt := range lists {
		t.Run("list "+tt.name, func(t *testing.T) {
			got, err := st.APIKeys(t.Context(), tt.projectID)
			if err != nil {
				t.Fatalf("APIKeys: %v", err)
			}
			if len(got) == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("APIKeys (-want +got):\n%s", diff)
			}
		})
	}

	dupHash := &bb.APIKey{ID: bb.NewID(), ProjectID: p.ID, Hash: bb.HashAPIKey("key-1"), CreatedAt: base}
	if err := st.CreateAPIKey(t.Context(), dupHash); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("CreateAPIKey(duplicate hash) = %v; want code %q", err, bb.CodeConflict)
	}
}

// testSettingOrInit checks that the first writer of a setting wins, also in a race.
func testSettingOrInit(t *testing.T, st bb.Store) {
	ctx := t.Context()
	name := "storetest-" + bb.NewID()
	got, err := st.SettingOrInit(ctx, name, []byte("first"))
	if err != nil {
		t.Fatalf("SettingOrInit: %v", err)
	}
	if diff := cmp.Diff([]byte("first"), got); diff != "" {
		t.Errorf("SettingOrInit on an absent setting (-want +got):\n%s", diff)
	}
	got, err = st.SettingOrInit(ctx, name, []byte("second"))
	if err != nil {
		t.Fatalf("SettingOrInit: %v", err)
	}
	if diff := cmp.Diff([]byte("first"), got); diff != "" {
		t.Errorf("SettingOrInit on a present setting (-want +got):\n%s", diff)
	}
	binary := []byte{0, 1, 2, 0xff, 0xfe, 0}
	got, err = st.SettingOrInit(ctx, name+"-binary", binary)
	if err != nil {
		t.Fatalf("SettingOrInit: %v", err)
	}
	if diff := cmp.Diff(binary, got); diff != "" {
		t.Errorf("SettingOrInit with binary data (-want +got):\n%s", diff)
	}
	if err := st.SetSetting(ctx, name, []byte("replaced")); err != nil {
		t.Fatalf("SetSetting on a present setting: %v", err)
	}
	if err := st.SetSetting(ctx, name+"-set", nil); err != nil {
		t.Fatalf("SetSetting on an absent setting: %v", err)
	}
	for want, n := range map[string]string{"replaced": name, "": name + "-set"} {
		got, err := st.SettingOrInit(ctx, n, []byte("init"))
		if err != nil {
			t.Fatalf("SettingOrInit: %v", err)
		}
		if string(got) != want {
			t.Errorf("SettingOrInit(%s) after SetSetting = %q; want %q", n, got, want)
		}
	}

	const racers = 20
	raced := "storetest-race-" + bb.NewID()
	results := make([][]byte, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			v, err := st.SettingOrInit(ctx, raced, fmt.Appendf(nil, "value-%d", i))
			if err != nil {
				t.Errorf("racing SettingOrInit: %v", err)
			}
			results[i] = v
		})
	}
	close(start)
	wg.Wait()
	for i, v := range results {
		if diff := cmp.Diff(results[0], v); diff != "" {
			t.Errorf("racing SettingOrInit %d got another value than racer 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
	var valid bool
	for i := range racers {
		valid = valid || string(results[0]) == fmt.Sprintf("value-%d", i)
	}
	if !valid {
		t.Errorf("racing SettingOrInit = %q; want one of the racers' values", results[0])
	}
}

// testNotFound checks that lookups of what does not exist are CodeNotFound errors.
func testNotFound(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	missing := bb.NewID()
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Session", func(ctx context.Context) error { _, err := st.Session(ctx, missing); return err }},
		{"Session with a non-UUID id", func(ctx context.Context) error { _, err := st.Session(ctx, "x'; --"); return err }},
		{"UpdateSession", func(ctx context.Context) error {
			_, err := st.UpdateSession(ctx, missing, func(*bb.Session) error {
				t.Error("UpdateSession called fn for a missing session")
				return nil
			})
			return err
		}},
		{"Project", func(ctx context.Context) error { _, err := st.Project(ctx, missing); return err }},
		{"UpdateProject", func(ctx context.Context) error {
			_, err := st.UpdateProject(ctx, missing, func(*bb.Project) error {
				t.Error("UpdateProject called fn for a missing project")
				return nil
			})
			return err
		}},
		{"Usage", func(ctx context.Context) error { _, err := st.Usage(ctx, missing, base); return err }},
		{"APIKeyByHash", func(ctx context.Context) error { _, err := st.APIKeyByHash(ctx, bb.HashAPIKey(missing)); return err }},
		{"CreateSession in a missing project", func(ctx context.Context) error {
			s := newSession(p, base)
			s.ProjectID = missing
			return st.CreateSession(ctx, s, bigLimit)
		}},
		{"CreateAPIKey in a missing project", func(ctx context.Context) error {
			return st.CreateAPIKey(ctx, &bb.APIKey{ID: bb.NewID(), ProjectID: missing, Hash: bb.HashAPIKey(missing)})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(t.Context()); bb.CodeOf(err) != bb.CodeNotFound {
				t.Errorf("%s = %v (code %q); want code %q", tt.name, err, bb.CodeOf(err), bb.CodeNotFound)
			}
		})
	}
}
