package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/postgres/pgtest"
	"github.com/browserd/browserd/internal/storetest"
)

// open opens the store at url, closed at the end of t.
func open(t testing.TB, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// TestStore runs the tests that do not stop the server on one cluster, in parallel:
// starting a cluster costs seconds.
func TestStore(t *testing.T) {
	t.Parallel()
	c := pgtest.Start(t)
	for _, tt := range []struct {
		name string
		fn   func(t *testing.T, url string)
	}{
		{"Contract", testContract},
		{"ConcurrentOpen", testConcurrentOpen},
		{"CreateFromProcesses", testCreateFromProcesses},
		{"PasswordNeverShown", testPasswordNeverShown},
		{"Nodes", testNodes},
		{"ExpireNodes", testExpireNodes},
		{"ExpireRace", testExpireRace},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, c.NewDatabase(t))
		})
	}
}

// testContract runs the contract suite every store passes (internal/sqlite runs it
// too). The subtests share one database: the suite reads only what it wrote.
func testContract(t *testing.T, url string) {
	storetest.Run(t, func(t *testing.T) bb.Store { return open(t, url) })
}

// newProject stores a project with the given concurrency.
func newProject(t *testing.T, st bb.Store, concurrency int) *bb.Project {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := &bb.Project{ID: bb.NewID(), Name: "p", DefaultTimeout: 300, Concurrency: concurrency, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateProject(t.Context(), p); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	return p
}

// testConcurrentOpen: nodes opening a new database at once apply each migration once
// (the advisory lock), and a reopen applies nothing and keeps the data.
func testConcurrentOpen(t *testing.T, url string) {
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() { // exits after one Open and Close; drained below
			db, err := postgres.Open(t.Context(), url, nil)
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
	db := open(t, url)
	p := newProject(t, db, 1)
	db2 := open(t, url)
	if got, err := db2.Project(t.Context(), p.ID); err != nil || !cmp.Equal(got, p) {
		t.Errorf("Project after reopen = %+v, %v; want %+v", got, err, p)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var versions string
	if err := conn.QueryRow(t.Context(), `SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		num, _, _ := strings.Cut(f.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("migration %s: %v", f.Name(), err)
		}
		want = append(want, strconv.Itoa(v))
	}
	if versions != strings.Join(want, ",") {
		t.Errorf("schema_migrations = %q; want %q, each applied once", versions, strings.Join(want, ","))
	}
}

// testCreateFromProcesses races session creates (and creates of one context name) from
// several OS processes (this test binary, re-executed: helperMain) against one project:
// a limit kept by one process's mutex would over-admit here. Each round uses a new
// project; across every process exactly limit creates and one context create win.
func testCreateFromProcesses(t *testing.T, url string) {
	db := open(t, url)
	const procs, perProc, limit, rounds = 4, 6, 5, 3
	for round := range rounds {
		p := newProject(t, db, limit)
		start := time.Now().Add(1500 * time.Millisecond).UnixMilli()
		outs := make([]bytes.Buffer, procs)
		cmds := make([]*exec.Cmd, procs)
		for i := range cmds {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=1", "BROWSERD_PGTEST_DSN="+url, "BROWSERD_PGTEST_PROJECT="+p.ID,
				"BROWSERD_PGTEST_N="+strconv.Itoa(perProc), "BROWSERD_PGTEST_LIMIT="+strconv.Itoa(limit),
				"BROWSERD_PGTEST_START="+strconv.FormatInt(start, 10))
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i] = cmd
		}
		var created, limited, contexts, duplicates int
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("round %d: helper %d: %v\n%s", round, i, err, outs[i].String())
			}
			var c, l, x, d int
			if _, err := fmt.Sscanf(outs[i].String(), "sessions %d %d contexts %d %d", &c, &l, &x, &d); err != nil {
				t.Fatalf("round %d: helper %d printed %q: %v", round, i, outs[i].String(), err)
			}
			created, limited, contexts, duplicates = created+c, limited+l, contexts+x, duplicates+d
		}
		if created != limit || limited != procs*perProc-limit {
			t.Errorf("round %d: %d creates won and %d were refused across %d processes; want %d and %d",
				round, created, limited, procs, limit, procs*perProc-limit)
		}
		if contexts != 1 || duplicates != procs*perProc-1 {
			t.Errorf("round %d: %d creates of one context name won, %d were duplicates; want 1 and %d",
				round, contexts, duplicates, procs*perProc-1)
		}
		live, err := db.Sessions(t.Context(), bb.SessionFilter{ProjectID: p.ID, LiveOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(live) != limit {
			t.Errorf("round %d: %d live sessions stored; want %d", round, len(live), limit)
		}
	}
}

// TestOutage: with the server stopped, every call fails with CodeUnavailable and Retry
// (the API's 503), nothing hangs, and once it is back the same DB works again without a
// reopen; the data is still there.
func TestOutage(t *testing.T) {
	t.Parallel()
	c := pgtest.StartPrivate(t)
	url := c.NewDatabase(t)
	db := open(t, url)
	p := newProject(t, db, 5)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusRunning, CreatedAt: now, StartedAt: now}
	if err := db.CreateSession(t.Context(), s, 5); err != nil {
		t.Fatal(err)
	}

	c.Stop(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	calls := map[string]func() error{
		"Session":  func() error { _, err := db.Session(ctx, s.ID); return err },
		"Sessions": func() error { _, err := db.Sessions(ctx, bb.SessionFilter{ProjectID: p.ID}); return err },
		"CreateSession": func() error {
			return db.CreateSession(ctx, &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusPending, CreatedAt: now}, 5)
		},
		"UpdateSession": func() error {
			_, err := db.UpdateSession(ctx, s.ID, func(s *bb.Session) error { s.ProxyBytes = 1; return nil })
			return err
		},
		"APIKeyByHash":  func() error { _, err := db.APIKeyByHash(ctx, bb.HashAPIKey("x")); return err },
		"SettingOrInit": func() error { _, err := db.SettingOrInit(ctx, "x", []byte("y")); return err },
		"Ping":          func() error { return db.Ping(ctx) },
		// A node cut off from the database must see an outage, not ErrNodeNotMember:
		// only the latter says it was marked lost.
		"Heartbeat":    func() error { _, err := db.Heartbeat(ctx, "n", 0, nil); return err },
		"JoinNode":     func() error { return db.JoinNode(ctx, &bb.Node{ID: "n"}) },
		"ExpireNodes":  func() error { _, err := db.ExpireNodes(ctx, time.Second); return err },
		"Nodes":        func() error { _, err := db.Nodes(ctx); return err },
		"SetNodeState": func() error { return db.SetNodeState(ctx, "n", bb.NodeDraining) },
	}
	var wg sync.WaitGroup
	for name, call := range calls {
		wg.Go(func() {
			err := call()
			if bb.CodeOf(err) != bb.CodeUnavailable || !bb.RetryOf(err) {
				t.Errorf("%s with PostgreSQL stopped = %v (code %q, retry %v); want %q with retry",
					name, err, bb.CodeOf(err), bb.RetryOf(err), bb.CodeUnavailable)
			}
		})
	}
	wg.Wait()

	c.Start(t)
	got, err := db.Session(t.Context(), s.ID)
	if err != nil {
		t.Fatalf("Session after PostgreSQL came back: %v", err)
	}
	if got.Status != bb.StatusRunning || got.ProxyBytes != 0 {
		t.Errorf("session after the outage = %s, proxyBytes %d; want RUNNING, 0 (the failed update wrote nothing)", got.Status, got.ProxyBytes)
	}
	if err := db.CreateSession(t.Context(), &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusPending, CreatedAt: now}, 5); err != nil {
		t.Errorf("CreateSession after PostgreSQL came back: %v", err)
	}
}

// testPasswordNeverShown: errors of Open (wrong password, unreachable server, a URL
// that does not parse) do not contain the password.
func testPasswordNeverShown(t *testing.T, good string) {
	const pw = "s3cr3t-Pa55word"
	u, err := neturl.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(u.User.Username(), pw) // a password the server refuses
	wrong := u.String()
	tests := []struct {
		name, url string
	}{
		{"wrong password", wrong},
		{"nobody listens", "postgres://browserd:" + pw + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"},
		{"bad port", "postgres://browserd:" + pw + "@127.0.0.1:notaport/db"},
		{"password parameter", "postgres://127.0.0.1:1/db?user=u&password=" + pw + "&sslmode=disable&connect_timeout=2"},
		{"bad parameter", "postgres://browserd:" + pw + "@127.0.0.1:1/db?sslmode=bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := postgres.Open(t.Context(), tt.url, nil)
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded; want an error")
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("Open error shows the password: %v", err)
			}
			if r := postgres.Redact(tt.url); strings.Contains(r, pw) {
				t.Errorf("Redact(%q) = %q, with the password", tt.url, r)
			}
		})
	}
}

func TestIsURL(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"postgres://u:p@h/db", true},
		{"postgresql://h/db?sslmode=disable", true},
		{"POSTGRES://h/db", true},
		{"/var/lib/browserd/browserd.db", false},
		{"browserd.db", false},
		{"postgres.db", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := postgres.IsURL(tt.in); got != tt.want {
			t.Errorf("IsURL(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"postgresql://h/db?password=secret&user=u", "postgresql://h/db?password=xxxxx&user=u"},
		{"postgres://u:sec%40ret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u:secret@h:port/db\x7f", "postgres://(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := postgres.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}
