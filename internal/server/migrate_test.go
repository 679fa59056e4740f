package server

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
	"github.com/browserd/browserd/internal/postgres/pgtest"
	"github.com/browserd/browserd/internal/sqlite"
)

// adminOut runs `browserd admin args…` in-process with no environment and returns its
// output; a non-zero exit fails the test.
func adminOut(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"admin"}, args...)
	if code := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); code != 0 {
		t.Fatalf("browserd admin %s: exit %d: %s", strings.Join(args[1:3], " "), code, stderr.String())
	}
	return stdout.String()
}

// TestAdminPostgres: the admin commands work on a PostgreSQL database as on a SQLite
// file, and the password of --database shows nowhere.
func TestAdminPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t).NewDatabase(t)
	var p struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		Concurrency int    `json:"concurrency"`
	}
	out := adminOut(t, "projects", "create", "--name", "pg", "--concurrency", "3", "--database", url, "--json")
	if err := json.Unmarshal([]byte(out), &p); err != nil || p.Name != "pg" || p.Concurrency != 3 {
		t.Fatalf("projects create printed %q (%v); want project pg with concurrency 3", out, err)
	}
	var key struct {
		Key       string `json:"key"`
		ProjectID string `json:"projectId"`
	}
	out = adminOut(t, "keys", "create", "--project", p.ID, "--name", "k", "--database", url, "--json")
	if err := json.Unmarshal([]byte(out), &key); err != nil || key.ProjectID != p.ID || key.Key == "" {
		t.Fatalf("keys create printed %q (%v)", out, err)
	}
	if out := adminOut(t, "projects", "list", "--database", url); !strings.Contains(out, p.ID) {
		t.Errorf("projects list does not show %s:\n%s", p.ID, out)
	}
	if out := adminOut(t, "keys", "list", "--project", p.ID, "--database", url); !strings.Contains(out, "k ") {
		t.Errorf("keys list does not show key k:\n%s", out)
	}
	db, err := postgres.Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if k, err := db.APIKeyByHash(t.Context(), bb.HashAPIKey(key.Key)); err != nil || k.ProjectID != p.ID {
		t.Errorf("the created key in PostgreSQL = %+v, %v", k, err)
	}

	// An unreachable server: the error names the database without its password.
	bad := "postgres://browserd:Pa55-w0rd-hidden@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"admin", "projects", "list", "--database", bad}, func(string) string { return "" }, &stdout, &stderr)
	if code != 1 || strings.Contains(stderr.String()+stdout.String(), "Pa55-w0rd-hidden") {
		t.Errorf("admin on an unreachable database: exit %d, output %q; want exit 1 without the password", code, stderr.String())
	}
}

// TestMigrate copies a SQLite database with every kind of row into PostgreSQL, twice:
// the second run copies nothing and changes nothing.
func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "browserd.db")
	src, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]string{settingSnapshotKey: "0123456789abcdef0123456789abcdef", settingSigningSecret: "sign"} {
		_, err := src.SettingOrInit(ctx, name, []byte(v))
		must(err)
	}
	var projects []*bb.Project
	for i, name := range []string{"one", "two"} {
		p := &bb.Project{ID: bb.NewID(), Name: name, OwnerID: "o", DefaultTimeout: 300, Concurrency: 2,
			CreatedAt: at.Add(time.Duration(i) * time.Second), UpdatedAt: at}
		must(src.CreateProject(ctx, p))
		must(src.CreateAPIKey(ctx, &bb.APIKey{ID: bb.NewID(), ProjectID: p.ID, Name: "k" + name, Hash: bb.HashAPIKey(name), CreatedAt: at}))
		projects = append(projects, p)
	}
	p := projects[0]
	must(src.CreateContext(ctx, &bb.Context{ID: bb.NewID(), ProjectID: p.ID, Name: "Login", CreatedAt: at, UpdatedAt: at,
		Snapshot: "contexts/x/v1/", SnapshotSize: 10, SnapshotAt: at}))
	must(src.CreateContext(ctx, &bb.Context{ID: bb.NewID(), ProjectID: p.ID, CreatedAt: at, UpdatedAt: at}))
	must(src.CreateExtension(ctx, &bb.Extension{ID: bb.NewID(), ProjectID: p.ID, FileName: "e.zip", CreatedAt: at, UpdatedAt: at, Blob: "extensions/e/", Size: 5}))
	cert := &bb.Certificate{ID: bb.NewID(), ProjectID: p.ID, CreatedAt: at, UpdatedAt: at, PEM: []byte("-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n")}
	must(src.CreateCertificate(ctx, cert, 1))
	must(src.AddFetchProxyBytes(ctx, p.ID, 4321))
	hook := &bb.Webhook{ID: bb.NewID(), ProjectID: p.ID, Endpoint: "https://h.example/", EventTypes: []bb.EventType{bb.EventSessionEnded},
		Secret: []byte("sealed"), PreviousSecret: []byte("old"), PreviousExpiresAt: at, CreatedAt: at, UpdatedAt: at}
	must(src.CreateWebhook(ctx, hook))
	session := func(status bb.SessionStatus, n int) *bb.Session {
		created := at.Add(time.Duration(n) * time.Minute)
		s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: status, CreatedAt: created, UpdatedAt: created, StartedAt: created,
			Region: bb.RegionUSWest2, Timeout: 300, UserMetadata: json.RawMessage(`{"n":"` + string(rune('a'+n)) + `"}`),
			Settings: bb.BrowserSettings{BlockAds: true}, NodeID: "node", ProxyBytes: int64(n)}
		if status.Terminal() {
			s.EndedAt = created.Add(time.Minute)
		}
		must(src.CreateSession(ctx, s, 100))
		return s
	}
	withLogs := session(bb.StatusCompleted, 1)
	purged := session(bb.StatusTimedOut, 2)
	session(bb.StatusError, 3) // no artifacts
	live := session(bb.StatusRunning, 4)
	var logs []bb.SessionLog
	for i := range 2500 { // more than one page
		logs = append(logs, bb.SessionLog{SessionID: withLogs.ID, Method: "Page.navigate", PageID: i % 3,
			Request:  &bb.LogMessage{Body: json.RawMessage(`{"i":1}`), Raw: `{"id":1}`, Timestamp: at},
			Response: &bb.LogMessage{Body: json.RawMessage(`{}`), Raw: `{"id":1,"result":{}}`, Timestamp: at.Add(time.Millisecond)}})
	}
	logs = append(logs, bb.SessionLog{SessionID: purged.ID, Method: "X", Request: &bb.LogMessage{Body: json.RawMessage(`{}`), Raw: "{}", Timestamp: at}})
	must(src.AppendSessionLogs(ctx, logs))
	must(src.MarkArtifacts(ctx, withLogs.ID, at))
	must(src.MarkArtifacts(ctx, purged.ID, at))
	must(src.PurgeArtifacts(ctx, purged.ID, at))

	url := pgtest.Start(t).NewDatabase(t)
	first := adminOut(t, "migrate", "--from", path, "--to", url)
	for _, want := range []string{"projects: 2 copied, 0 already there", "api keys: 2 copied", "contexts: 2 copied",
		"extensions: 1 copied", "certificates: 1 copied", "fetch usage: 1 copied", "webhooks: 1 copied", "sessions: 3 copied", "log rows: 2500 copied", "sessions: 1 live ones not copied"} {
		if !strings.Contains(first, want) {
			t.Errorf("first migrate printed no %q:\n%s", want, first)
		}
	}
	second := adminOut(t, "migrate", "--from", path, "--to", url)
	for _, want := range []string{"projects: 0 copied, 2 already there", "api keys: 0 copied, 2 already there",
		"contexts: 0 copied, 2 already there", "extensions: 0 copied, 1 already there", "certificates: 0 copied, 1 already there", "fetch usage: 0 copied, 1 already there", "webhooks: 0 copied, 1 already there",
		"sessions: 0 copied, 3 already there", "log rows: 0 copied, 2500 already there"} {
		if !strings.Contains(second, want) {
			t.Errorf("second migrate printed no %q:\n%s", want, second)
		}
	}
	if strings.Contains(first+second, postgresPassword(url)) {
		t.Errorf("migrate printed the password")
	}

	dst, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	compare := func(what string, want, got any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s in PostgreSQL: %v", what, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s in PostgreSQL (-SQLite +PostgreSQL):\n%s", what, diff)
		}
	}
	got, err := dst.Projects(ctx)
	compare("projects", projects, got, err)
	for _, p := range projects {
		want, _ := src.APIKeys(ctx, p.ID)
		got, err := dst.APIKeys(ctx, p.ID)
		compare("api keys", want, got, err)
	}
	wantCtx, _ := src.Contexts(ctx)
	for _, c := range wantCtx {
		got, err := dst.Context(ctx, c.ID)
		compare("context", c, got, err)
	}
	wantExt, _ := src.Extensions(ctx)
	for _, e := range wantExt {
		got, err := dst.Extension(ctx, e.ID)
		compare("extension", e, got, err)
	}
	gotCert, err := dst.Certificate(ctx, cert.ID)
	compare("certificate", cert, gotCert, err)
	if n, err := dst.FetchProxyBytes(ctx, p.ID); err != nil || n != 4321 { // once, after two runs
		t.Errorf("fetch proxy bytes after migrate = %d, %v; want 4321", n, err)
	}
	gotHook, err := dst.Webhook(ctx, hook.ID)
	compare("webhook", hook, gotHook, err)
	for _, name := range []string{settingSnapshotKey, settingSigningSecret} {
		want, _ := src.SettingOrInit(ctx, name, nil)
		got, err := dst.SettingOrInit(ctx, name, []byte("other"))
		compare("setting "+name, want, got, err)
	}
	wantSessions, _ := src.Sessions(ctx, bb.SessionFilter{})
	gotSessions, err := dst.Sessions(ctx, bb.SessionFilter{})
	var ended []*bb.Session
	for _, s := range wantSessions {
		if s.ID != live.ID {
			ended = append(ended, s)
		}
	}
	compare("sessions", ended, gotSessions, err)
	for _, s := range ended {
		wm, wp, _ := src.ArtifactsState(ctx, s.ID)
		gm, gp, err := dst.ArtifactsState(ctx, s.ID)
		compare("artifacts state of "+s.ID, [2]bool{wm, wp}, [2]bool{gm, gp}, err)
		want, _ := src.SessionLogs(ctx, s.ID, 0, 10000)
		got, err := dst.SessionLogs(ctx, s.ID, 0, 10000)
		compare("logs of "+s.ID, want, got, err)
	}
}

// postgresPassword returns the password of a postgres URL.
func postgresPassword(url string) string {
	_, rest, _ := strings.Cut(url, "://")
	userinfo, _, _ := strings.Cut(rest, "@")
	_, pw, _ := strings.Cut(userinfo, ":")
	return pw
}
