package certs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/certs"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// caPEM returns a new CA certificate valid for a day from now.
func caPEM(t testing.TB, now time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type env struct {
	db      bb.Store
	svc     *certs.Service
	m       *bb.Manager
	l       *chrometest.Launcher
	p, q    *bb.Project // two projects
	clock   *clock
	mu      sync.Mutex
	launchs []bb.LaunchOptions // what each launch got, its files made
}

func newEnv(t *testing.T, canTrust bool, pool bb.PoolConfig) *env {
	t.Helper()
	db := sqlitetest.Open(t)
	e := &env{db: db, clock: &clock{now: time.Now()}}
	e.p, _ = sqlitetest.Project(t, db, 5)
	e.q, _ = sqlitetest.Project(t, db, 5)
	svc, err := certs.New(certs.Config{Store: e.db, CanTrust: canTrust, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	e.l = &chrometest.Launcher{OnLaunch: func(_ context.Context, opts bb.LaunchOptions) error {
		e.mu.Lock()
		e.launchs = append(e.launchs, opts)
		e.mu.Unlock()
		return nil
	}}
	signer, err := bb.NewSigner([]byte("a test secret of at least 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	e.m, err = bb.NewManager(bb.ManagerConfig{Store: e.db, Launcher: e.l, Signer: signer, Parts: []bb.SessionPart{svc}, Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetWarmPool(e.m)
	if err := e.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.m.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func (e *env) upload(t *testing.T, project *bb.Project) *bb.Certificate {
	t.Helper()
	c, err := e.svc.CreateCertificate(t.Context(), project.ID, bytes.NewReader(caPEM(t, e.clock.Now())))
	if err != nil {
		t.Fatalf("CreateCertificate: %v", err)
	}
	return c
}

func withCerts(ids ...string) bb.CreateSessionRequest {
	return bb.CreateSessionRequest{CACertificateIDs: ids}
}

// TestProjects checks that a certificate belongs to its project alone: another
// project's key gets 404 for it everywhere, sessions included, before anything starts.
func TestProjects(t *testing.T) {
	e := newEnv(t, true, bb.PoolConfig{})
	c := e.upload(t, e.p)
	if got, err := e.svc.Certificate(t.Context(), e.p.ID, c.ID); err != nil || got.ID != c.ID {
		t.Fatalf("Certificate = %v, %v", got, err)
	}
	for name, call := range map[string]func() error{
		"Certificate":       func() error { _, err := e.svc.Certificate(t.Context(), e.q.ID, c.ID); return err },
		"DeleteCertificate": func() error { return e.svc.DeleteCertificate(t.Context(), e.q.ID, c.ID) },
		"CreateSession":     func() error { _, err := e.m.CreateSession(t.Context(), e.q.ID, withCerts(c.ID)); return err },
		"CreateSession with an unknown id": func() error {
			_, err := e.m.CreateSession(t.Context(), e.p.ID, withCerts(c.ID, bb.NewID()))
			return err
		},
		"CreateSession with a malformed id": func() error {
			_, err := e.m.CreateSession(t.Context(), e.p.ID, withCerts("../x"))
			return err
		},
	} {
		if err := call(); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("%s as another project = %v; want 404", name, err)
		}
	}
	if list, err := e.svc.Certificates(t.Context(), e.q.ID); err != nil || len(list) != 0 {
		t.Errorf("Certificates of the other project = %v, %v; want none", list, err)
	}
	if e.l.Launched() != 0 {
		t.Errorf("%d browsers launched for refused creates", e.l.Launched())
	}
	if sessions, err := e.db.Sessions(t.Context(), bb.SessionFilter{ProjectID: e.q.ID}); err != nil || len(sessions) != 0 {
		t.Errorf("refused creates recorded sessions: %v, %v", sessions, err)
	}
}

// TestLaunchTrusts checks that a session's browser gets the certificates it names, in
// id order, and that a session without them gets none.
func TestLaunchTrusts(t *testing.T) {
	e := newEnv(t, true, bb.PoolConfig{})
	a, b := e.upload(t, e.p), e.upload(t, e.p)
	req, err := bb.DecodeCreateSessionRequest([]byte(`{"proxySettings":{"caCertificates":["` + b.ID + `","` + a.ID + `"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, req); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{}); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	first, second := a, b
	if b.ID < a.ID {
		first, second = b, a
	}
	if len(e.launchs) != 2 || !slices.EqualFunc(e.launchs[0].CACertificates, [][]byte{first.PEM, second.PEM}, bytes.Equal) {
		t.Fatalf("launches %d; first trusts %q; want both certificates in id order", len(e.launchs), e.launchs[0].CACertificates)
	}
	if len(e.launchs[1].CACertificates) != 0 {
		t.Errorf("a session without caCertificates trusts %q", e.launchs[1].CACertificates)
	}
}

// TestWarm checks that repeated creates with the same certificates are served from the
// warm pool, and that deleting a certificate closes the warm browsers that trust it.
func TestWarm(t *testing.T) {
	e := newEnv(t, true, bb.PoolConfig{Size: 1, Keyed: 2})
	c := e.upload(t, e.p)
	waitPool := func(what string, ready int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for st := e.m.PoolStats(); st.KeyedReady != ready || st.Launching != 0; st = e.m.PoolStats() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: pool %+v; want %d keyed ready", what, st, ready)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := range 3 {
		if _, err := e.m.CreateSession(t.Context(), e.p.ID, withCerts(c.ID)); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
		if st := e.m.PoolStats(); st.Hits != int64(i) || st.Misses != 1 {
			t.Errorf("create %d: pool %+v; want %d hits after one miss", i+1, st, i)
		}
		waitPool("a browser trusting the certificate", 1)
	}
	closed := e.l.Closed()
	if err := e.svc.DeleteCertificate(t.Context(), e.p.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	waitPool("deleted: its warm browser is closed", 0)
	for deadline := time.Now().Add(10 * time.Second); e.l.Closed() != closed+1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("closed %d browsers on delete; want 1", e.l.Closed()-closed)
		}
	}
}

// TestCheck checks the refusals of a create: a server that cannot trust certificates
// says why, and a certificate that expired since its upload is 400.
func TestCheck(t *testing.T) {
	off := newEnv(t, false, bb.PoolConfig{})
	c := off.upload(t, off.p)
	if _, err := off.m.CreateSession(t.Context(), off.p.ID, withCerts(c.ID)); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("CreateSession without certutil = %v; want 400", err)
	}
	e := newEnv(t, true, bb.PoolConfig{})
	c = e.upload(t, e.p)
	e.clock.Add(48 * time.Hour)
	if _, err := e.m.CreateSession(t.Context(), e.p.ID, withCerts(c.ID)); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("CreateSession with an expired certificate = %v; want 400", err)
	}
}

// TestLimit checks the per-project count limit.
func TestLimit(t *testing.T) {
	e := newEnv(t, true, bb.PoolConfig{})
	for range bb.MaxCertificates {
		e.upload(t, e.p)
	}
	_, err := e.svc.CreateCertificate(t.Context(), e.p.ID, bytes.NewReader(caPEM(t, e.clock.Now())))
	if bb.CodeOf(err) != bb.CodeLimit {
		t.Errorf("upload %d = %v; want 429", bb.MaxCertificates+1, err)
	}
	e.upload(t, e.q) // another project has its own
}
