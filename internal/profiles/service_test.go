package profiles_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/profiles"
	"github.com/browserd/browserd/internal/sqlite"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// testEnv is a Service and a Manager with it as its part, on a fresh SQLite database
// with one project, fresh blobs and the fake launcher.
type testEnv struct {
	db  *sqlite.DB
	l   bb.Launcher
	cfg profiles.Config
	svc *profiles.Service
	m   *bb.Manager
	p   *bb.Project
}

// newEnv returns a started Service on fresh directories with cfg's SessionMax and
// ProjectMax, and a reconciled Manager that runs it as a part; l may be nil (a
// chrometest.Launcher). t.Cleanup closes both.
func newEnv(t *testing.T, l bb.Launcher, cfg profiles.Config) *testEnv {
	t.Helper()
	db := sqlitetest.Open(t)
	p, _ := sqlitetest.Project(t, db, 5)
	if l == nil {
		l = &chrometest.Launcher{}
	}
	if cfg.Blobs == nil { // the local disk unless the test gives a store (S3)
		blobs, err := fsblob.New(filepath.Join(t.TempDir(), "blobs"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Blobs = blobs
	}
	cfg.Store, cfg.WorkDir = db, filepath.Join(t.TempDir(), "work")
	cfg.SnapshotKey = bytes.Repeat([]byte{1}, profiles.SnapshotKeySize)
	svc, err := profiles.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bb.NewManager(bb.ManagerConfig{Store: db, Launcher: l, Signer: signer, Parts: []bb.SessionPart{svc}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		svc.Close()
	})
	return &testEnv{db: db, l: l, cfg: cfg, svc: svc, m: m, p: p}
}

// create starts a session of the project and fails the test on error.
func (e *testEnv) create(t *testing.T, req bb.CreateSessionRequest) *bb.Session {
	t.Helper()
	s, err := e.m.CreateSession(t.Context(), e.p.ID, req)
	if err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return s
}

// extensionZip returns a zip of files (name → content).
func extensionZip(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var minimalExtension = map[string]string{"manifest.json": `{"manifest_version":3,"name":"t","version":"1"}`}

func TestContextsAPI(t *testing.T) {
	e := newEnv(t, nil, profiles.Config{})
	other, _ := sqlitetest.Project(t, e.db, 5)
	ctx := t.Context()

	c, keys, err := e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{Name: "Login"})
	if err != nil {
		t.Fatalf("CreateContext: %v", err)
	}
	if c.ProjectID != e.p.ID || c.Name != "Login" || !bb.ValidID(c.ID) || c.CreatedAt.IsZero() || !c.UpdatedAt.Equal(c.CreatedAt) {
		t.Errorf("CreateContext = %+v", c)
	}
	checkKeys(t, keys)
	_, keys2, err := e.svc.RenewContextKeys(ctx, e.p.ID, c.ID)
	if err != nil {
		t.Fatalf("RenewContextKeys: %v", err)
	}
	checkKeys(t, keys2)
	if keys2.PublicKey == keys.PublicKey {
		t.Error("RenewContextKeys returned the same public key")
	}
	got, err := e.svc.Context(ctx, e.p.ID, c.ID)
	if err != nil || got.ID != c.ID || got.Name != "Login" {
		t.Errorf("Context = %+v, %v", got, err)
	}

	for name, err := range map[string]error{
		"duplicate name":  third(e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{Name: " login "})),
		"other project's": second(e.svc.Context(ctx, other.ID, c.ID)),
		"unknown id":      second(e.svc.Context(ctx, e.p.ID, bb.NewID())),
		"not an id":       second(e.svc.Context(ctx, e.p.ID, "../x")),
		"renew other's":   third(e.svc.RenewContextKeys(ctx, other.ID, c.ID)),
		"delete other's":  e.svc.DeleteContext(ctx, other.ID, c.ID),
		"wrong projectId": third(e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{ProjectID: other.ID})),
	} {
		want := map[string]bb.ErrorCode{"duplicate name": bb.CodeConflict, "wrong projectId": bb.CodeUnauthorized}[name]
		if want == "" {
			want = bb.CodeNotFound
		}
		if bb.CodeOf(err) != want {
			t.Errorf("%s: %v (code %q); want code %q", name, err, bb.CodeOf(err), want)
		}
		if name == "duplicate name" && !bb.NoRetryOf(err) {
			t.Errorf("duplicate name error %v does not ask clients not to retry", err)
		}
	}
	if _, _, err := e.svc.CreateContext(ctx, other.ID, bb.CreateContextRequest{Name: "login"}); err != nil {
		t.Errorf("CreateContext(same name, other project) = %v", err)
	}
	if err := e.svc.DeleteContext(ctx, e.p.ID, c.ID); err != nil {
		t.Fatalf("DeleteContext: %v", err)
	}
	if _, err := e.svc.Context(ctx, e.p.ID, c.ID); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Context after delete = %v; want not found", err)
	}
	if err := e.svc.DeleteContext(ctx, e.p.ID, c.ID); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("second DeleteContext = %v; want not found", err)
	}
}

func second[A, B any](_ A, b B) B        { return b }
func third[A, B, C any](_ A, _ B, c C) C { return c }

// checkKeys checks ContextKeys against spec §2.9: a real PEM RSA public key.
func checkKeys(t *testing.T, k bb.ContextKeys) {
	t.Helper()
	block, rest := pem.Decode([]byte(k.PublicKey))
	if block == nil || block.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("publicKey is not one PEM PUBLIC KEY block: %q", k.PublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("parse publicKey: %v", err)
	}
	if rk, ok := pub.(*rsa.PublicKey); !ok || rk.N.BitLen() != 2048 {
		t.Errorf("publicKey is %T; want a 2048-bit RSA key", pub)
	}
	if k.CipherAlgorithm != "AES-256-CBC" || k.InitializationVectorSize != 16 || k.UploadURL == "" {
		t.Errorf("keys = %+v; want AES-256-CBC, 16 and an upload URL", k)
	}
}

func TestExtensionsAPI(t *testing.T) {
	e := newEnv(t, nil, profiles.Config{})
	cfg := e.cfg
	other, _ := sqlitetest.Project(t, e.db, 5)
	ctx := t.Context()
	data := extensionZip(t, minimalExtension)

	ext, err := e.svc.CreateExtension(ctx, e.p.ID, `C:\Users\me\stagehand-extension.zip`, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("CreateExtension: %v", err)
	}
	if ext.FileName != "stagehand-extension.zip" || ext.ProjectID != e.p.ID || ext.Size != int64(len(data)) {
		t.Errorf("CreateExtension = %+v", ext)
	}
	blobs, err := cfg.Blobs.List(ctx, ext.Blob)
	if err != nil || len(blobs) != 1 || blobs[0].Size != int64(len(data)) {
		t.Errorf("blobs of the extension = %+v, %v; want the zip", blobs, err)
	}
	if got, err := e.svc.Extension(ctx, e.p.ID, ext.ID); err != nil || got.ID != ext.ID {
		t.Errorf("Extension = %+v, %v", got, err)
	}
	if _, err := e.svc.Extension(ctx, other.ID, ext.ID); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Extension(other project) = %v; want not found", err)
	}
	if err := e.svc.DeleteExtension(ctx, other.ID, ext.ID); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("DeleteExtension(other project) = %v; want not found", err)
	}
	if ext, err := e.svc.CreateExtension(ctx, e.p.ID, "", bytes.NewReader(data)); err != nil || ext.FileName != "extension.zip" {
		t.Errorf("CreateExtension(no file name) = %+v, %v; want fileName extension.zip", ext, err)
	}

	if err := e.svc.DeleteExtension(ctx, e.p.ID, ext.ID); err != nil {
		t.Fatalf("DeleteExtension: %v", err)
	}
	if blobs, err := cfg.Blobs.List(ctx, ext.Blob); err != nil || len(blobs) != 0 {
		t.Errorf("blobs after delete = %+v, %v; want none", blobs, err)
	}
	if err := e.svc.DeleteExtension(ctx, e.p.ID, ext.ID); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("second DeleteExtension = %v; want not found", err)
	}

	tests := []struct {
		name string
		r    io.Reader
		want bb.ErrorCode
	}{
		{"too large", io.LimitReader(zeros{}, bb.MaxExtensionSize+1), bb.CodeTooLarge},
		{"empty", bytes.NewReader(nil), bb.CodeInvalid},
		{"not a zip", strings.NewReader("hello"), bb.CodeInvalid},
		{"no manifest", bytes.NewReader(extensionZip(t, map[string]string{"a.js": "1"})), bb.CodeInvalid},
		{"read error", io.MultiReader(strings.NewReader("PK"), errReader{}), bb.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.svc.CreateExtension(ctx, e.p.ID, "x.zip", tt.r); bb.CodeOf(err) != tt.want {
				t.Errorf("CreateExtension = %v; want code %q", err, tt.want)
			}
		})
	}
	// Nothing is left of the refused uploads.
	if entries, _ := os.ReadDir(cfg.WorkDir); len(entries) != 0 {
		t.Errorf("work dir has %d entries after the uploads; want none", len(entries))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

// TestSessionRefs checks that a create naming an unknown (or another project's)
// context or extension is a 404 that records no session, and that a session with
// both gets their files and gives them back when it ends.
func TestSessionRefs(t *testing.T) {
	var mu sync.Mutex
	var launched []bb.LaunchOptions
	var manifests []error // at launch: the launcher copies the files then
	l := &chrometest.Launcher{OnLaunch: func(_ context.Context, opts bb.LaunchOptions) error {
		mu.Lock()
		defer mu.Unlock()
		launched = append(launched, opts)
		for _, dir := range opts.Extensions {
			_, err := os.Stat(filepath.Join(dir, "manifest.json"))
			manifests = append(manifests, err)
		}
		return nil
	}}
	e := newEnv(t, l, profiles.Config{})
	cfg := e.cfg
	other, _ := sqlitetest.Project(t, e.db, 5)
	ctx := t.Context()
	c, _, err := e.svc.CreateContext(ctx, e.p.ID, bb.CreateContextRequest{})
	if err != nil {
		t.Fatal(err)
	}
	otherCtx, _, err := e.svc.CreateContext(ctx, other.ID, bb.CreateContextRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ext, err := e.svc.CreateExtension(ctx, e.p.ID, "e.zip", bytes.NewReader(extensionZip(t, minimalExtension)))
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]bb.CreateSessionRequest{
		"unknown context":         {Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: bb.NewID()}}},
		"malformed context id":    {Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: "nope"}}},
		"other project's context": {Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: otherCtx.ID}}},
		"unknown extension":       {ExtensionID: bb.NewID()},
	} {
		if _, err := e.m.CreateSession(ctx, e.p.ID, req); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("%s: CreateSession = %v; want code %q", name, err, bb.CodeNotFound)
		}
	}
	if list, err := e.m.Sessions(ctx, e.p.ID, bb.SessionFilter{}); err != nil || len(list) != 0 {
		t.Errorf("sessions after refused creates = %d, %v; want none", len(list), err)
	}

	s := e.create(t, bb.CreateSessionRequest{ExtensionID: ext.ID,
		Settings: bb.BrowserSettings{Context: &bb.ContextSettings{ID: c.ID, Persist: true}}})
	if s.ContextID != c.ID || s.ExtensionID != ext.ID {
		t.Errorf("session contextId %q, extensionId %q; want %q, %q", s.ContextID, s.ExtensionID, c.ID, ext.ID)
	}
	mu.Lock()
	opts := launched[len(launched)-1]
	mu.Unlock()
	if opts.Profile != "" {
		t.Errorf("Profile = %q; want none for a context without a snapshot", opts.Profile)
	}
	if len(opts.Extensions) != 1 || len(manifests) != 1 {
		t.Fatalf("Extensions = %q; want one dir", opts.Extensions)
	}
	if manifests[0] != nil {
		t.Errorf("the extension dir had no manifest.json at launch: %v", manifests[0])
	}
	// The launch's files are gone once the browser started (the launcher copied them).
	if _, err := os.Stat(opts.Extensions[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the extension's launch files are still there after the launch: %v", err)
	}
	if err := e.svc.DeleteExtension(ctx, e.p.ID, ext.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.ReleaseSession(ctx, e.p.ID, s.ID); err != nil {
		t.Fatal(err)
	}
	// The fake browser can't keep a profile, so nothing is saved; the work dir goes.
	waitFor(t, func() bool {
		entries, _ := os.ReadDir(cfg.WorkDir)
		return len(entries) == 0
	})
	if got, err := e.svc.Context(ctx, e.p.ID, c.ID); err != nil || got.Snapshot != "" {
		t.Errorf("context after a session whose browser can't keep a profile = %+v, %v; want no snapshot", got, err)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
