package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// testCertificates checks certificate round trips, listing per project, the count
// limit (also under racing uploads), deletion and not-found errors.
func testCertificates(t *testing.T, st bb.Store) {
	ctx := t.Context()
	p, other := newProject(t, st, bigLimit), newProject(t, st, bigLimit)
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	newCert := func(p *bb.Project, at time.Time) *bb.Certificate {
		return &bb.Certificate{ID: bb.NewID(), ProjectID: p.ID, CreatedAt: at, UpdatedAt: at.Add(time.Millisecond), PEM: pem}
	}
	c1, c2 := newCert(p, base.Add(time.Second)), newCert(p, base)
	for _, c := range []*bb.Certificate{c1, c2, newCert(other, base)} {
		if err := st.CreateCertificate(ctx, c, 10); err != nil {
			t.Fatalf("CreateCertificate: %v", err)
		}
	}
	got, err := st.Certificate(ctx, c1.ID)
	if err != nil {
		t.Fatalf("Certificate: %v", err)
	}
	if diff := cmp.Diff(c1, got); diff != "" {
		t.Errorf("Certificate after CreateCertificate (-want +got):\n%s", diff)
	}
	list, err := st.Certificates(ctx, p.ID)
	if err != nil {
		t.Fatalf("Certificates: %v", err)
	}
	if diff := cmp.Diff([]*bb.Certificate{c2, c1}, list); diff != "" {
		t.Errorf("Certificates (oldest first, this project only) (-want +got):\n%s", diff)
	}
	if list, err := st.Certificates(ctx, bb.NewID()); err != nil || len(list) != 0 || list == nil {
		t.Errorf("Certificates(unknown project) = %v, %v; want an empty list", list, err)
	}
	if err := st.CreateCertificate(ctx, &bb.Certificate{ID: c1.ID, ProjectID: p.ID, PEM: pem}, 10); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("CreateCertificate(duplicate id) = %v; want code %q", err, bb.CodeConflict)
	}
	if err := st.CreateCertificate(ctx, newCert(p, base), 2); bb.CodeOf(err) != bb.CodeLimit || !bb.NoRetryOf(err) {
		t.Errorf("CreateCertificate(at the limit) = %v; want code %q, no retry", err, bb.CodeLimit)
	}
	deleted, err := st.DeleteCertificate(ctx, c1.ID)
	if err != nil {
		t.Fatalf("DeleteCertificate: %v", err)
	}
	if diff := cmp.Diff(c1, deleted); diff != "" {
		t.Errorf("DeleteCertificate result (-want +got):\n%s", diff)
	}
	for name, call := range map[string]func(ctx context.Context) error{
		"Certificate":       func(ctx context.Context) error { _, err := st.Certificate(ctx, c1.ID); return err },
		"DeleteCertificate": func(ctx context.Context) error { _, err := st.DeleteCertificate(ctx, c1.ID); return err },
		"CreateCertificate in a missing project": func(ctx context.Context) error {
			return st.CreateCertificate(ctx, &bb.Certificate{ID: bb.NewID(), ProjectID: bb.NewID(), PEM: pem}, 10)
		},
	} {
		if err := call(ctx); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("%s after delete = %v; want code %q", name, err, bb.CodeNotFound)
		}
	}

	// Racing uploads never pass the limit.
	racer := newProject(t, st, bigLimit)
	const limit, tries = 3, 8
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() {
			err := st.CreateCertificate(ctx, newCert(racer, base), limit)
			if err != nil && bb.CodeOf(err) != bb.CodeLimit && bb.CodeOf(err) != bb.CodeUnavailable {
				t.Errorf("CreateCertificate (racing) = %v", err)
			}
		})
	}
	wg.Wait()
	if list, err := st.Certificates(ctx, racer.ID); err != nil || len(list) != limit {
		t.Errorf("after %d racing uploads with limit %d: %d certificates, %v; want %d", tries, limit, len(list), err, limit)
	}
}
