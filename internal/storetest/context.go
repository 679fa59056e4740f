package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// testContexts checks context round trips, updates, deletion and not-found errors.
func testContexts(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	c := &bb.Context{ID: bb.NewID(), ProjectID: p.ID, Name: "Shop login", CreatedAt: base, UpdatedAt: base}
	want := *c
	if err := st.CreateContext(t.Context(), c); err != nil {
		t.Fatalf("CreateContext: %v", err)
	}
	got, err := st.Context(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("Context: %v", err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("Context after CreateContext (-want +got):\n%s", diff)
	}
	unnamed := &bb.Context{ID: bb.NewID(), ProjectID: p.ID, CreatedAt: base.In(time.FixedZone("X", 3600)), UpdatedAt: base}
	if err := st.CreateContext(t.Context(), unnamed); err != nil {
		t.Fatalf("CreateContext(unnamed): %v", err)
	}
	if got, err := st.Context(t.Context(), unnamed.ID); err != nil || !got.CreatedAt.Equal(base) || got.CreatedAt.Location() != time.UTC || got.Name != "" {
		t.Errorf("Context(unnamed) = %+v, %v; want no name and CreatedAt %v in UTC", got, err, base)
	}

	snapAt := base.Add(time.Minute)
	got, err = st.UpdateContext(t.Context(), c.ID, func(c *bb.Context) error {
		c.Snapshot, c.SnapshotSize, c.SnapshotAt, c.UpdatedAt = "contexts/"+c.ID+"/v1/", 1234, snapAt, snapAt
		c.ProjectID = "someone else" // ignored: a context never changes project
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateContext: %v", err)
	}
	want.Snapshot, want.SnapshotSize, want.SnapshotAt, want.UpdatedAt = "contexts/"+c.ID+"/v1/", 1234, snapAt, snapAt
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("UpdateContext result (-want +got):\n%s", diff)
	}
	_, err = st.UpdateContext(t.Context(), c.ID, func(c *bb.Context) error {
		c.Snapshot = "not written"
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Errorf("UpdateContext(aborting fn) = %v; want %v", err, errAbort)
	}
	if got, err := st.Context(t.Context(), c.ID); err != nil || got.Snapshot != want.Snapshot {
		t.Errorf("Context after an aborted update = %+v, %v; want snapshot %q", got, err, want.Snapshot)
	}

	deleted, err := st.DeleteContext(t.Context(), c.ID)
	if err != nil {
		t.Fatalf("DeleteContext: %v", err)
	}
	if diff := cmp.Diff(&want, deleted); diff != "" {
		t.Errorf("DeleteContext result (-want +got):\n%s", diff)
	}
	for name, call := range map[string]func(ctx context.Context) error{
		"Context":       func(ctx context.Context) error { _, err := st.Context(ctx, c.ID); return err },
		"DeleteContext": func(ctx context.Context) error { _, err := st.DeleteContext(ctx, c.ID); return err },
		"UpdateContext": func(ctx context.Context) error {
			_, err := st.UpdateContext(ctx, c.ID, func(*bb.Context) error {
				t.Error("UpdateContext called fn for a deleted context")
				return nil
			})
			return err
		},
		"CreateContext in a missing project": func(ctx context.Context) error {
			return st.CreateContext(ctx, &bb.Context{ID: bb.NewID(), ProjectID: bb.NewID(), CreatedAt: base})
		},
	} {
		if err := call(t.Context()); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("%s after delete = %v; want code %q", name, err, bb.CodeNotFound)
		}
	}
	if err := st.CreateContext(t.Context(), &bb.Context{ID: unnamed.ID, ProjectID: p.ID, CreatedAt: base}); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("CreateContext(duplicate id) = %v; want code %q", err, bb.CodeConflict)
	}
}

// testContextNames checks that names are unique per project, ignoring case and
// surrounding space, that unnamed contexts never clash, and that a deleted context's
// name is free again.
func testContextNames(t *testing.T, st bb.Store) {
	p1, p2 := newProject(t, st, bigLimit), newProject(t, st, bigLimit)
	create := func(p *bb.Project, name string) (*bb.Context, error) {
		c := &bb.Context{ID: bb.NewID(), ProjectID: p.ID, Name: name, CreatedAt: base, UpdatedAt: base}
		return c, st.CreateContext(t.Context(), c)
	}
	first, err := create(p1, "Login")
	if err != nil {
		t.Fatalf("CreateContext: %v", err)
	}
	for _, name := range []string{"Login", "login", "  LOGIN  ", "\tlogin\n"} {
		_, err := create(p1, name)
		if bb.CodeOf(err) != bb.CodeConflict || !bb.NoRetryOf(err) {
			t.Errorf("CreateContext(%q) after %q = %v; want code %q with NoRetry", name, "Login", err, bb.CodeConflict)
		}
	}
	if _, err := create(p2, "login"); err != nil {
		t.Errorf("CreateContext(same name, other project) = %v; want success", err)
	}
	for range 2 {
		if _, err := create(p1, ""); err != nil {
			t.Errorf("CreateContext(unnamed) = %v; want success (unnamed contexts never clash)", err)
		}
	}
	other, err := create(p1, "other")
	if err != nil {
		t.Fatalf("CreateContext: %v", err)
	}
	_, err = st.UpdateContext(t.Context(), other.ID, func(c *bb.Context) error { c.Name = "LOGIN"; return nil })
	if bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("UpdateContext(rename to a used name) = %v; want code %q", err, bb.CodeConflict)
	}
	if _, err := st.DeleteContext(t.Context(), first.ID); err != nil {
		t.Fatalf("DeleteContext: %v", err)
	}
	if _, err := create(p1, "login"); err != nil {
		t.Errorf("CreateContext(name of a deleted context) = %v; want success", err)
	}

	// Racing creates of one name: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = create(p1, "Race") })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case bb.CodeOf(err) != bb.CodeConflict:
			t.Errorf("racing CreateContext = %v; want success or code %q", err, bb.CodeConflict)
		}
	}
	if won != 1 {
		t.Errorf("%d racing creates of one name succeeded; want 1", won)
	}
}

// testExtensions checks extension round trips, deletion and not-found errors.
func testExtensions(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	e := &bb.Extension{ID: bb.NewID(), ProjectID: p.ID, FileName: "stagehand-extension.zip",
		CreatedAt: base, UpdatedAt: base.Add(time.Millisecond), Blob: "extensions/x/", Size: 4321}
	want := *e
	if err := st.CreateExtension(t.Context(), e); err != nil {
		t.Fatalf("CreateExtension: %v", err)
	}
	got, err := st.Extension(t.Context(), e.ID)
	if err != nil {
		t.Fatalf("Extension: %v", err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("Extension after CreateExtension (-want +got):\n%s", diff)
	}
	if err := st.CreateExtension(t.Context(), &bb.Extension{ID: e.ID, ProjectID: p.ID, FileName: "x.zip"}); bb.CodeOf(err) != bb.CodeConflict {
		t.Errorf("CreateExtension(duplicate id) = %v; want code %q", err, bb.CodeConflict)
	}
	deleted, err := st.DeleteExtension(t.Context(), e.ID)
	if err != nil {
		t.Fatalf("DeleteExtension: %v", err)
	}
	if diff := cmp.Diff(&want, deleted); diff != "" {
		t.Errorf("DeleteExtension result (-want +got):\n%s", diff)
	}
	for name, call := range map[string]func(ctx context.Context) error{
		"Extension":       func(ctx context.Context) error { _, err := st.Extension(ctx, e.ID); return err },
		"DeleteExtension": func(ctx context.Context) error { _, err := st.DeleteExtension(ctx, e.ID); return err },
		"CreateExtension in a missing project": func(ctx context.Context) error {
			return st.CreateExtension(ctx, &bb.Extension{ID: bb.NewID(), ProjectID: bb.NewID(), FileName: "x.zip"})
		},
	} {
		if err := call(t.Context()); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("%s after delete = %v; want code %q", name, err, bb.CodeNotFound)
		}
	}
}

// testContextsAndExtensions runs the ContextStore and ExtensionStore contract.
func testContextsAndExtensions(t *testing.T, st bb.Store) {
	t.Run("Contexts", func(t *testing.T) { testContexts(t, st) })
	t.Run("ContextNames", func(t *testing.T) { testContextNames(t, st) })
	t.Run("Extensions", func(t *testing.T) { testExtensions(t, st) })
}
