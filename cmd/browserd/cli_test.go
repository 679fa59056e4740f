package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/browserd/browserd/internal/cli"
	"github.com/browserd/browserd/internal/httpapi"
)

var updateCLIGolden = flag.Bool("update-cli", false, "rewrite testdata/cli/*.golden")

// cliRun runs a client command in-process against base and returns its exit code and
// output.
func cliRun(t *testing.T, base, key string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	env := map[string]string{"BROWSERBASE_BASE_URL": base, "BROWSERBASE_API_KEY": key}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	code = run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// cliNormalizer makes outputs stable: known ids become named placeholders, and times,
// other UUIDs, target ids and tokens become placeholders of the same width, so that
// columns stay aligned as the real output had them.
type cliNormalizer struct {
	names map[string]string // real value → placeholder
	host  string
}

var (
	uuidRE     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)
	targetRE   = regexp.MustCompile(`\b[0-9A-F]{32}\b`)
	signKeyRE  = regexp.MustCompile(`signingKey=[^\s&"]+`)
	liveRE     = regexp.MustCompile(`lv1\.[A-Za-z0-9._-]+`)
	cpuRE      = regexp.MustCompile(`\d+% of a core`)
	sizeRE     = regexp.MustCompile(`\d+(\.\d)? (B|KiB|MiB|GiB)\b`)
	minutesRE  = regexp.MustCompile(`(browser minutes\s+)\d+`)
	durationRE = regexp.MustCompile(` in \d+ ms`)
)

// same returns label padded with dots to the width of the value it replaces.
func same(label string, width int) string {
	if len(label) >= width {
		return label
	}
	return label + strings.Repeat(".", width-len(label))
}

func (n *cliNormalizer) name(real, label string) {
	n.names[real] = same("<"+label+">", len(real))
}

func (n *cliNormalizer) normalize(s string) string {
	s = signKeyRE.ReplaceAllString(s, "signingKey=<key>") // before the ids they contain
	s = liveRE.ReplaceAllString(s, "<live-token>")
	for real, ph := range n.names {
		s = strings.ReplaceAll(s, real, ph)
	}
	s = strings.ReplaceAll(s, n.host, same("HOST", len(n.host)))
	s = uuidRE.ReplaceAllStringFunc(s, func(m string) string { return same("<uuid>", len(m)) })
	s = timeRE.ReplaceAllString(s, "YYYY-MM-DDThh:mm:ss.mmmZ")
	s = targetRE.ReplaceAllStringFunc(s, func(m string) string { return same("<target>", len(m)) })
	s = cpuRE.ReplaceAllString(s, "N% of a core")
	s = sizeRE.ReplaceAllString(s, "<size>")
	s = minutesRE.ReplaceAllString(s, "${1}N")
	return durationRE.ReplaceAllString(s, " in N ms")
}

// golden compares got with testdata/cli/<name>.golden, or rewrites it with -update-cli.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "cli", name+".golden")
	if *updateCLIGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-cli to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: output differs from %s\n--- got ---\n%s--- want ---\n%s", name, path, got, want)
	}
}

// TestCLI runs the client commands against a real server (real Chromium) and compares
// their tables with golden files, their --json with the API, and their exit codes.
func TestCLI(t *testing.T) {
	srv := startServer(t, t.TempDir(), defaultEnv())
	n := &cliNormalizer{names: make(map[string]string), host: strings.TrimPrefix(srv.URL, "http://")}
	ok := func(name string, args ...string) string {
		t.Helper()
		code, out, errOut := cliRun(t, srv.URL, testAPIKey, args...)
		if code != cli.ExitOK {
			t.Fatalf("browserd %s: exit %d; stderr: %s", strings.Join(args, " "), code, errOut)
		}
		if name != "" {
			golden(t, name, n.normalize(out))
		}
		return out
	}
	fails := func(want int, wantErr string, args ...string) {
		t.Helper()
		code, out, errOut := cliRun(t, srv.URL, testAPIKey, args...)
		if code != want || !strings.Contains(errOut, wantErr) || out != "" {
			t.Errorf("browserd %s: exit %d, stdout %q, stderr %q; want exit %d and %q",
				strings.Join(args, " "), code, out, errOut, want, wantErr)
		}
	}

	var projects []struct{ ID string }
	if err := json.Unmarshal([]byte(ok("", "projects", "list", "--json")), &projects); err != nil || len(projects) != 1 {
		t.Fatalf("projects list --json: %v %v", projects, err)
	}
	n.name(projects[0].ID, "project")
	ok("projects_list", "projects", "list")
	ok("projects_get", "projects", "get")
	ok("projects_usage", "projects", "usage", projects[0].ID)

	// A session, from create to release.
	var created struct{ ID, Status string }
	if err := json.Unmarshal([]byte(ok("", "sessions", "create", "--keep-alive", "--metadata", `{"suite":"cli"}`, "--json")), &created); err != nil {
		t.Fatal(err)
	}
	n.name(created.ID, "session")
	ok("sessions_list", "sessions", "list", "--status", "RUNNING")
	ok("sessions_get_live", "sessions", "get", created.ID)
	ok("sessions_debug", "sessions", "debug", created.ID, "--read-only")
	served := make(map[string]bool)
	for _, rt := range httpapi.Routes() {
		served[rt] = true
	}
	if served["POST /v1/sessions/{id}/uploads"] {
		file := filepath.Join(t.TempDir(), "report.txt")
		if err := os.WriteFile(file, []byte("quarterly numbers"), 0o644); err != nil {
			t.Fatal(err)
		}
		ok("sessions_upload", "sessions", "upload", created.ID, file)
	}
	ok("sessions_release", "sessions", "release", created.ID)
	ok("sessions_list_ended", "sessions", "list", "--q", "user_metadata['suite']:'cli'")
	if served["GET /v1/sessions/{id}/downloads"] {
		zip := filepath.Join(t.TempDir(), "d.zip")
		out := ok("", "sessions", "downloads", created.ID, "-o", zip)
		if st, err := os.Stat(zip); err != nil || !strings.Contains(out, "to "+zip) || st.Size() < 22 {
			t.Errorf("sessions downloads: %q, %v", out, err)
		}
	}
	if served["GET /v1/sessions/{id}/logs"] {
		ok("", "sessions", "logs", created.ID)
	}
	fails(cli.ExitNotFound, "(HTTP 410)", "sessions", "debug", created.ID)

	// Contexts and extensions.
	var ctx struct{ ID string }
	if err := json.Unmarshal([]byte(ok("", "contexts", "create", "--name", "cli-test", "--json")), &ctx); err != nil {
		t.Fatal(err)
	}
	n.name(ctx.ID, "context")
	ok("contexts_get", "contexts", "get", ctx.ID)
	fails(cli.ExitRejected, "(HTTP 409)", "contexts", "create", "--name", "cli-test")
	ok("contexts_delete", "contexts", "delete", ctx.ID)
	fails(cli.ExitNotFound, "(HTTP 404)", "contexts", "get", ctx.ID)

	zipPath := filepath.Join(t.TempDir(), "my-extension.zip")
	if err := os.WriteFile(zipPath, extensionZip(t), 0o644); err != nil {
		t.Fatal(err)
	}
	var ext struct{ ID string }
	if err := json.Unmarshal([]byte(ok("", "extensions", "upload", zipPath, "--json")), &ext); err != nil {
		t.Fatal(err)
	}
	n.name(ext.ID, "extension")
	ok("extensions_get", "extensions", "get", ext.ID)
	ok("extensions_delete", "extensions", "delete", ext.ID)

	// Exit codes scripts rely on.
	fails(cli.ExitNotFound, "Session not found (HTTP 404)", "sessions", "get", "00000000-0000-0000-0000-000000000000")
	fails(cli.ExitRejected, "(HTTP 400)", "sessions", "create", "--timeout", "5")
	fails(cli.ExitUsage, "sessions get takes one session ID", "sessions", "get")
	fails(cli.ExitUsage, "unknown command", "sessions", "frobnicate")
	fails(cli.ExitUsage, "--metadata must be a JSON object", "sessions", "create", "--metadata", "[1]")
	if code, _, errOut := cliRun(t, srv.URL, "wrong-key", "sessions", "list"); code != cli.ExitAuth || !strings.Contains(errOut, "(HTTP 401)") {
		t.Errorf("wrong key: exit %d, %q; want %d", code, errOut, cli.ExitAuth)
	}
	if code, _, errOut := cliRun(t, srv.URL, "", "sessions", "list"); code != cli.ExitUsage || !strings.Contains(errOut, "BROWSERBASE_API_KEY") {
		t.Errorf("no key: exit %d, %q; want %d", code, errOut, cli.ExitUsage)
	}
	if code, _, _ := cliRun(t, "http://127.0.0.1:1", testAPIKey, "sessions", "list"); code != cli.ExitError {
		t.Errorf("no server: exit %d; want %d", code, cli.ExitError)
	}
}
