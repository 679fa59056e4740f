package profiles_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/profiles"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// The tests in this file run real Chromium through the Manager, with SQLite, the
// fsblob store and a web site served by the test.

// site is a web site with a login: /login sets a session cookie, a persistent cookie
// and an HttpOnly one; /whoami answers with the cookies the browser sent.
func site(t testing.TB) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		http.SetCookie(w, &http.Cookie{Name: "sess", Value: user, Path: "/"}) // a session cookie
		http.SetCookie(w, &http.Cookie{Name: "persist", Value: user, Path: "/", MaxAge: 3600})
		http.SetCookie(w, &http.Cookie{Name: "auth", Value: "token-" + user, Path: "/", HttpOnly: true, MaxAge: 3600})
		io.WriteString(w, "<html><body>logged in</body></html>")
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		var names []string
		for _, c := range r.Cookies() {
			names = append(names, c.Name+"="+c.Value)
		}
		sort.Strings(names)
		io.WriteString(w, strings.Join(names, ";"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html><head><title>page</title></head><body>page</body></html>")
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// chromeEnv is a Manager with real Chromium and the profiles part, its storage in one
// directory.
type chromeEnv struct {
	dir     string
	db      *sqlite.DB
	blobs   *fsblob.Store
	storage profiles.Config
	svc     *profiles.Service
	m       *bb.Manager
	p       *bb.Project
	runDir  string
}

// newChromeEnv returns a started Service and a reconciled Manager over dir (a new temp dir when ""); the
// Manager and the Service are closed by t.Cleanup, which checks that no browser or file
// is left. wrap, when set, wraps the blob store the Service uses.
func newChromeEnv(t testing.TB, dir string, cfg bb.ManagerConfig, wrap ...func(bb.BlobStore) bb.BlobStore) *chromeEnv {
	t.Helper()
	path := chrometest.Chrome(t)
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "browserd.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &chromeEnv{dir: dir, db: db, runDir: filepath.Join(dir, "run")}
	if e.blobs, err = fsblob.New(filepath.Join(dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	e.storage = profiles.Config{Store: db, Blobs: e.blobs, SnapshotKey: bytes.Repeat([]byte{9}, profiles.SnapshotKeySize),
		WorkDir: filepath.Join(dir, "work")}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	l, err := chrome.New(chrome.Config{Path: path, RunDir: e.runDir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.runDir = l.RunDir() // as root, the browsers' own copy of it (internal/chrome/sandbox.go)
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range wrap {
		e.storage.Blobs = w(e.storage.Blobs)
	}
	t.Cleanup(func() { l.Close() }) // after the Manager's: removes the sandbox init's copy
	e.storage.Logger = logger
	if e.svc, err = profiles.New(e.storage); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.svc.Close() }) // after the Manager's
	if err := e.svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Launcher, cfg.Signer, cfg.Logger = db, l, signer, logger
	cfg.Parts = append(cfg.Parts, e.svc)
	cfg.Setup.Proxies = chrometest.Proxies()
	if cfg.DisconnectGrace == 0 {
		cfg.DisconnectGrace = 50 * time.Millisecond
	}
	if e.m, err = bb.NewManager(cfg); err != nil {
		t.Fatal(err)
	}
	e.svc.SetWarmPool(e.m)
	if err := e.m.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.m.Close(ctx); err != nil {
			t.Errorf("close manager: %v", err)
		}
		chrometest.AssertNoLeaks(t, e.runDir)
		if entries, _ := os.ReadDir(e.storage.WorkDir); len(entries) != 0 {
			t.Errorf("%d entries left in the work dir", len(entries))
		}
	})
	return e
}

// project returns the env's project, creating it on first use.
func (e *chromeEnv) project(t testing.TB) *bb.Project {
	if e.p == nil {
		e.p, _ = sqlitetest.Project(t, e.db, 20)
	}
	return e.p
}

// newContext creates a context in the env's project.
func (e *chromeEnv) newContext(t testing.TB) *bb.Context {
	t.Helper()
	c, _, err := e.svc.CreateContext(context.Background(), e.project(t).ID, bb.CreateContextRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// context returns a context as the store has it.
func (e *chromeEnv) context(t testing.TB, id string) *bb.Context {
	t.Helper()
	c, err := e.db.Context(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// start creates a session and opens its first page.
func (e *chromeEnv) start(t testing.TB, req bb.CreateSessionRequest) (*bb.Session, *page) {
	t.Helper()
	s, err := e.m.CreateSession(context.Background(), e.project(t).ID, req)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	a, err := e.m.Attach(context.Background(), bb.ConnectCredentials{SigningKey: e.m.SigningKey(s.ID)})
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	p := openPage(t, a.BrowserURL)
	p.detach = a.Detach
	return s, p
}

// release ends a session with REQUEST_RELEASE.
func (e *chromeEnv) release(t testing.TB, s *bb.Session, p *page) {
	t.Helper()
	p.close()
	if _, err := e.m.ReleaseSession(context.Background(), s.ProjectID, s.ID); err != nil {
		t.Fatalf("ReleaseSession: %v", err)
	}
}

// waitSnapshot waits until the context points at a snapshot other than old.
func (e *chromeEnv) waitSnapshot(t testing.TB, id, old string) *bb.Context {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c := e.context(t, id)
		if c.Snapshot != "" && c.Snapshot != old {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("context %s still points at %q after 60 s", id, old)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func withContext(id string, persist bool) bb.CreateSessionRequest {
	return bb.CreateSessionRequest{Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: id, Persist: persist}}}
}

// page is a CDP connection to a browser, attached to its first page.
type page struct {
	c      *cdp.Conn
	sid    string
	detach func()
}

func openPage(t testing.TB, browserURL string) *page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cdp.Dial(ctx, browserURL, cdp.Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", browserURL, err)
	}
	p := &page{c: c}
	t.Cleanup(p.close)
	var targets struct {
		TargetInfos []struct{ TargetID, Type string } `json:"targetInfos"`
	}
	p.call(t, "", "Target.getTargets", nil, &targets)
	for _, ti := range targets.TargetInfos {
		if ti.Type == "page" {
			var att struct{ SessionID string }
			p.call(t, "", "Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &att)
			p.sid = att.SessionID
			return p
		}
	}
	t.Fatalf("no page target in %+v", targets)
	return nil
}

func (p *page) close() {
	p.c.CloseNow()
	if p.detach != nil {
		p.detach()
		p.detach = nil
	}
}

// call sends a CDP command and decodes its result into out.
func (p *page) call(t testing.TB, sid, method string, params, out any) {
	t.Helper()
	if err := p.tryCall(sid, method, params, out); err != nil {
		t.Fatal(err)
	}
}

func (p *page) tryCall(sid, method string, params, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.c.Call(ctx, sid, method, params, out); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}

// navigate loads url in the page and waits for it to be complete.
func (p *page) navigate(t testing.TB, url string) {
	t.Helper()
	p.call(t, p.sid, "Page.navigate", map[string]any{"url": url}, nil)
	deadline := time.Now().Add(30 * time.Second)
	for p.eval(t, `document.readyState === "complete" && location.href`) != url {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not load", url)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) and returns its value
// as text.
func (p *page) eval(t testing.TB, expr string) string {
	t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.call(t, p.sid, "Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true}, &r)
	if r.ExceptionDetails != nil {
		t.Fatalf("evaluate %q: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	return fmt.Sprint(r.Result.Value)
}

// The state a test writes and reads: local storage and IndexedDB of the site.
const (
	setStateJS = `(async (v) => {
		localStorage.setItem("user", v);
		await new Promise((res, rej) => {
			const r = indexedDB.open("app", 1);
			r.onupgradeneeded = () => r.result.createObjectStore("kv");
			r.onerror = () => rej(r.error);
			r.onsuccess = () => {
				const tx = r.result.transaction("kv", "readwrite");
				tx.objectStore("kv").put(v, "user");
				tx.oncomplete = () => { r.result.close(); res(); };
				tx.onerror = () => rej(tx.error);
			};
		});
		return "ok";
	})(%q)`
	getStateJS = `(async () => {
		const idb = await new Promise((res, rej) => {
			const r = indexedDB.open("app", 1);
			r.onupgradeneeded = () => r.result.createObjectStore("kv");
			r.onerror = () => rej(r.error);
			r.onsuccess = () => {
				const g = r.result.transaction("kv").objectStore("kv").get("user");
				g.onsuccess = () => { r.result.close(); res(String(g.result)); };
				g.onerror = () => rej(g.error);
			};
		});
		return "ls=" + localStorage.getItem("user") + " idb=" + idb;
	})()`
)

// logIn logs user in on the site: cookies, local storage and IndexedDB.
func logIn(t testing.TB, p *page, siteURL, user string) {
	t.Helper()
	p.navigate(t, siteURL+"/login?user="+user)
	if got := p.eval(t, fmt.Sprintf(setStateJS, user)); got != "ok" {
		t.Fatalf("set state = %q", got)
	}
}

// whoami returns what the site knows of the browser: its cookies, local storage and
// IndexedDB.
func whoami(t testing.TB, p *page, siteURL string) string {
	t.Helper()
	p.navigate(t, siteURL+"/whoami")
	cookies := p.eval(t, `document.body.innerText`)
	p.navigate(t, siteURL+"/")
	return cookies + " " + p.eval(t, getStateJS)
}

func loggedInAs(user string) string {
	return fmt.Sprintf("auth=token-%s;persist=%s;sess=%s ls=%s idb=%s", user, user, user, user, user)
}

// TestContextLogin logs in on a site in one session and finds the login in the next
// sessions on the same context: cookies (session, persistent, HttpOnly), local storage
// and IndexedDB; persist:false leaves the context as it was; write-back happens on
// release, on disconnect, on timeout and on shutdown.
func TestContextLogin(t *testing.T) {
	srv := site(t)
	dir := t.TempDir()
	e := newChromeEnv(t, dir, bb.ManagerConfig{})
	c := e.newContext(t)

	// 1. Log in as alice and release: the state is written back.
	s, p := e.start(t, withContext(c.ID, true))
	if s.ContextID != c.ID {
		t.Errorf("session contextId = %q; want %q", s.ContextID, c.ID)
	}
	if got := whoami(t, p, srv.URL); got != " ls=null idb=undefined" {
		t.Errorf("a new context already has state: %q", got)
	}
	logIn(t, p, srv.URL, "alice")
	e.release(t, s, p)
	saved := e.waitSnapshot(t, c.ID, "")
	if saved.SnapshotSize <= 0 || !saved.UpdatedAt.Equal(saved.SnapshotAt) || saved.SnapshotAt.Before(c.CreatedAt) {
		t.Errorf("context after the write-back = %+v", saved)
	}

	// 2. persist:false: still logged in; changes are not written back.
	s, p = e.start(t, withContext(c.ID, false))
	if got, want := whoami(t, p, srv.URL), loggedInAs("alice"); got != want {
		t.Errorf("next session on the context sees %q; want %q", got, want)
	}
	logIn(t, p, srv.URL, "mallory")
	e.release(t, s, p)
	// 3. The next create waits for write-backs in progress, so this sees any there was.
	s, p = e.start(t, withContext(c.ID, true))
	if got, want := whoami(t, p, srv.URL), loggedInAs("alice"); got != want {
		t.Errorf("after a persist:false session the context has %q; want %q", got, want)
	}
	if got := e.context(t, c.ID); got.Snapshot != saved.Snapshot || !got.UpdatedAt.Equal(saved.UpdatedAt) {
		t.Errorf("persist:false changed the context: %+v; want %+v", got, saved)
	}

	// 4. End by disconnecting (no keepAlive): written back too.
	logIn(t, p, srv.URL, "carol")
	p.close()
	saved = e.waitSnapshot(t, c.ID, saved.Snapshot)
	e.wantEnded(t, s.ID, bb.StatusCompleted)
	s, p = e.start(t, withContext(c.ID, true))
	if got, want := whoami(t, p, srv.URL), loggedInAs("carol"); got != want {
		t.Errorf("after a disconnect the context has %q; want %q", got, want)
	}

	// 5. Shutdown: Close writes back the sessions it ends; a new Manager on the same
	// data finds the state.
	logIn(t, p, srv.URL, "dave")
	p.close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := e.context(t, c.ID); got.Snapshot == saved.Snapshot {
		t.Fatal("Close did not write the context back")
	}
	e2 := newChromeEnv(t, dir, bb.ManagerConfig{})
	e2.p = e.p
	s, p = e2.start(t, withContext(c.ID, false))
	if got, want := whoami(t, p, srv.URL), loggedInAs("dave"); got != want {
		t.Errorf("after a shutdown the context has %q; want %q", got, want)
	}
	e2.release(t, s, p)
	// Only the current snapshot is kept.
	blobs, err := e2.blobs.List(context.Background(), "contexts/"+c.ID+"/")
	if err != nil || len(blobs) != 1 {
		t.Errorf("snapshot blobs = %+v, %v; want exactly one", blobs, err)
	}
}

// TestContextWarm checks that the warm pool serves sessions on a context with the
// state they must see: a browser launched ahead with the context's current snapshot,
// replaced when a session writes a newer one back, closed when the context is deleted.
func TestContextWarm(t *testing.T) {
	srv := site(t)
	e := newChromeEnv(t, "", bb.ManagerConfig{Pool: bb.PoolConfig{Size: 1, Keyed: 2}})
	c := e.newContext(t)
	waitPool := func(what string, ready int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for e.m.PoolStats().Ready != ready || e.m.PoolStats().Launching != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: pool %+v; want %d ready", what, e.m.PoolStats(), ready)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitPool("the pool fills", 1)

	// A context without a snapshot starts like any browser: from the pool.
	s, p := e.start(t, withContext(c.ID, true))
	if st := e.m.PoolStats(); st.Hits != 1 {
		t.Errorf("create on a new context: pool %+v; want a hit", st)
	}
	logIn(t, p, srv.URL, "alice")
	e.release(t, s, p)
	saved := e.waitSnapshot(t, c.ID, "")
	// The write-back makes the pool launch a browser from the new snapshot.
	waitPool("a warm browser from the snapshot", 2)

	s, p = e.start(t, withContext(c.ID, false))
	if st := e.m.PoolStats(); st.Hits != 2 {
		t.Errorf("create on the saved context: pool %+v; want a second hit", st)
	}
	if got, want := whoami(t, p, srv.URL), loggedInAs("alice"); got != want {
		t.Errorf("a warm session on the context sees %q; want %q", got, want)
	}
	logIn(t, p, srv.URL, "mallory") // persist:false: not written back
	e.release(t, s, p)
	waitPool("the context's browser is replaced", 2)

	s, p = e.start(t, withContext(c.ID, true))
	if st := e.m.PoolStats(); st.Hits != 3 {
		t.Errorf("third create on the context: pool %+v; want a third hit", st)
	}
	if got, want := whoami(t, p, srv.URL), loggedInAs("alice"); got != want {
		t.Errorf("after a persist:false session a warm browser has %q; want %q", got, want)
	}
	if got := e.context(t, c.ID); got.Snapshot != saved.Snapshot {
		t.Errorf("persist:false changed the context: %q; want %q", got.Snapshot, saved.Snapshot)
	}
	logIn(t, p, srv.URL, "carol")
	e.release(t, s, p)
	e.waitSnapshot(t, c.ID, saved.Snapshot)
	waitPool("a warm browser from carol's snapshot", 2)
	s, p = e.start(t, withContext(c.ID, false))
	if got, want := whoami(t, p, srv.URL), loggedInAs("carol"); got != want {
		t.Errorf("after a write-back a warm browser has %q; want %q", got, want)
	}
	e.release(t, s, p)
	waitPool("the context's browser is replaced", 2)

	// Deleting the context closes its warm browser at once.
	if err := e.svc.DeleteContext(context.Background(), e.p.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	waitPool("the deleted context's browser is closed", 1)
}

// wantEnded waits until the session has ended with status.
func (e *chromeEnv) wantEnded(t testing.TB, id string, status bb.SessionStatus) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := e.db.Session(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status.Terminal() {
			if s.Status != status {
				t.Errorf("session ended %s (%s); want %s", s.Status, s.EndReason, status)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s still %s", id, s.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestContextTimeout checks the write-back of a session that times out (here: nobody
// connected before the connect deadline).
func TestContextTimeout(t *testing.T) {
	e := newChromeEnv(t, "", bb.ManagerConfig{ConnectTimeout: 500 * time.Millisecond})
	c := e.newContext(t)
	s, err := e.m.CreateSession(context.Background(), e.project(t).ID, withContext(c.ID, true))
	if err != nil {
		t.Fatal(err)
	}
	e.wantEnded(t, s.ID, bb.StatusTimedOut)
	e.waitSnapshot(t, c.ID, "")
}

// TestContextLastWriterWins runs two sessions on one context at once. Each writes its
// own state back; the write-back that finishes last wins, whole: the state is never a
// mix of both (docs/COMPATIBILITY.md).
func TestContextLastWriterWins(t *testing.T) {
	srv := site(t)
	e := newChromeEnv(t, "", bb.ManagerConfig{})
	c := e.newContext(t)
	sa, pa := e.start(t, withContext(c.ID, true))
	sb, pb := e.start(t, withContext(c.ID, true))
	logIn(t, pa, srv.URL, "anna")
	logIn(t, pb, srv.URL, "bert")
	e.release(t, sa, pa)
	first := e.waitSnapshot(t, c.ID, "")
	e.release(t, sb, pb)
	e.waitSnapshot(t, c.ID, first.Snapshot)

	s, p := e.start(t, withContext(c.ID, false))
	if got, want := whoami(t, p, srv.URL), loggedInAs("bert"); got != want {
		t.Errorf("after anna's then bert's write-back the context has %q; want %q", got, want)
	}
	e.release(t, s, p)
}
