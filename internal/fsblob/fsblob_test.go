package fsblob_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/fsblob"
)

func keys(infos []bb.BlobInfo) []string {
	var out []string
	for _, i := range infos {
		out = append(out, i.Key)
	}
	return out
}

func read(t *testing.T, s *fsblob.Store, key string) string {
	t.Helper()
	r, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStore(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := fsblob.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) {
		t.Helper()
		n, err := s.Put(ctx, key, strings.NewReader(body))
		if err != nil || n != int64(len(body)) {
			t.Fatalf("Put(%s) = %d, %v", key, n, err)
		}
	}
	put("sessions/a/downloads/x-1.pdf", "pdf")
	put("sessions/a/downloads/y-2", "y")
	put("sessions/a/recording/0000000000.json", "[]")
	put("sessions/ab/downloads/z", "other session")
	put("sessions/a/downloads/x-1.pdf", "replaced")
	if got := read(t, s, "sessions/a/downloads/x-1.pdf"); got != "replaced" {
		t.Errorf("after replace = %q", got)
	}
	list, err := s.List(ctx, "sessions/a/downloads/")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"sessions/a/downloads/x-1.pdf", "sessions/a/downloads/y-2"}, keys(list)); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if list[0].Size != int64(len("replaced")) || list[0].ModTime.IsZero() {
		t.Errorf("info = %+v", list[0])
	}
	if list, err := s.List(ctx, "sessions/a/"); err != nil || len(list) != 3 {
		t.Errorf("List(sessions/a/) = %v, %v; want 3 (not sessions/ab)", keys(list), err)
	}
	if list, err := s.List(ctx, "sessions/none/"); err != nil || len(list) != 0 {
		t.Errorf("List(missing) = %v, %v", list, err)
	}
	if _, err := s.Open(ctx, "sessions/a/nope"); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Open(missing) = %v; want CodeNotFound", err)
	}
	if _, err := s.Open(ctx, "sessions/a"); bb.CodeOf(err) != bb.CodeNotFound {
		t.Errorf("Open(dir) = %v; want CodeNotFound", err)
	}
	if err := s.DeletePrefix(ctx, "sessions/a/"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, "sessions/ab/downloads/z"); got != "other session" {
		t.Errorf("sessions/ab after deleting sessions/a/ = %q", got)
	}
	if list, _ := s.List(ctx, "sessions/a/"); len(list) != 0 {
		t.Errorf("left after DeletePrefix: %v", keys(list))
	}
	if err := s.DeletePrefix(ctx, "sessions/a/"); err != nil {
		t.Errorf("DeletePrefix twice: %v", err)
	}
	// No temporary files are left behind.
	if tmp, _ := os.ReadDir(filepath.Join(dir, ".tmp")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	s, err := fsblob.New(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "/abs", "a/../../x", "..", "a//b", "a/./b", "a/", `a\b`, "a\x00b", ".tmp/x", ".tmp"} {
		if _, err := s.Put(ctx, key, strings.NewReader("x")); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("Put(%q) = %v; want CodeInvalid", key, err)
		}
		if _, err := s.Open(ctx, key); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("Open(%q) = %v; want CodeInvalid", key, err)
		}
	}
	for _, p := range []string{"", "/", "../", "a", "a/../", "a//", "./"} {
		if err := s.DeletePrefix(ctx, p); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("DeletePrefix(%q) = %v; want CodeInvalid", p, err)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Errorf("files outside the store: %v", entries)
	}
}

// A reader that fails leaves nothing stored and the old blob intact.
func TestPutFailure(t *testing.T) {
	ctx := t.Context()
	s, err := fsblob.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k/v", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "k/v", io.MultiReader(strings.NewReader("new"), errReader{})); err == nil {
		t.Fatal("Put with a failing reader succeeded")
	}
	if got := read(t, s, "k/v"); got != "old" {
		t.Errorf("after a failed Put = %q; want old", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
