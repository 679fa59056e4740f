// Package blobtest is the contract suite every browserd.BlobStore passes: internal/fsblob
// on the local disk and internal/s3blob on a real S3 server (SeaweedFS, s3test) run the
// same tests, as internal/storetest does for the databases.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// Options tune the suite for a store.
type Options struct {
	// LargeSize is the size of the streamed object [64 MiB].
	LargeSize int64
	// MaxHeapGrowth bounds how much the heap may grow while the large object is
	// written or read [40 MiB]: a store must stream, never hold a blob whole.
	MaxHeapGrowth uint64
}

// Run runs the suite. newStore returns a new, empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) bb.BlobStore, opts Options) {
	if opts.LargeSize == 0 {
		opts.LargeSize = 64 << 20
	}
	if opts.MaxHeapGrowth == 0 {
		opts.MaxHeapGrowth = 40 << 20
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s bb.BlobStore)
	}{
		{"PutOpenReplace", testPutOpenReplace},
		{"FailedPutKeepsOld", testFailedPut},
		{"ReplaceIsAtomic", testReplaceAtomic},
		{"OpenNotFound", testOpenNotFound},
		{"List", testList},
		{"DeletePrefix", testDeletePrefix},
		{"InvalidKeys", testInvalidKeys},
		{"Cancel", testCancel},
		{"Large", func(t *testing.T, s bb.BlobStore) { testLarge(t, s, opts) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

// Put stores body under key and fails the test on error.
func Put(t testing.TB, s bb.BlobStore, key, body string) {
	t.Helper()
	n, err := s.Put(t.Context(), key, strings.NewReader(body))
	if err != nil || n != int64(len(body)) {
		t.Fatalf("Put(%s) = %d, %v; want %d", key, n, err, len(body))
	}
}

// Read returns key's bytes and fails the test on error.
func Read(t testing.TB, s bb.BlobStore, key string) string {
	t.Helper()
	r, err := s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%s): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}

// Keys returns the keys of infos.
func Keys(infos []bb.BlobInfo) []string {
	out := []string{}
	for _, i := range infos {
		out = append(out, i.Key)
	}
	return out
}

func testPutOpenReplace(t *testing.T, s bb.BlobStore) {
	Put(t, s, "sessions/a/downloads/x-1.pdf", "pdf")
	Put(t, s, "sessions/a/empty", "")
	if got := Read(t, s, "sessions/a/downloads/x-1.pdf"); got != "pdf" {
		t.Errorf("read = %q", got)
	}
	if got := Read(t, s, "sessions/a/empty"); got != "" {
		t.Errorf("empty blob = %q", got)
	}
	Put(t, s, "sessions/a/downloads/x-1.pdf", "replaced, longer")
	if got := Read(t, s, "sessions/a/downloads/x-1.pdf"); got != "replaced, longer" {
		t.Errorf("after replace = %q", got)
	}
	Put(t, s, "sessions/a/downloads/x-1.pdf", "short")
	if got := Read(t, s, "sessions/a/downloads/x-1.pdf"); got != "short" {
		t.Errorf("after a shorter replace = %q", got)
	}
	// Names with spaces, unicode and characters URLs escape.
	for _, key := range []string{"a/with space", "a/ünïcödé ☃", "a/q?x=1&y#z", "a/percent%20", "a/+plus"} {
		Put(t, s, key, key)
		if got := Read(t, s, key); got != key {
			t.Errorf("Read(%q) = %q", key, got)
		}
	}
}

// failAfter returns n bytes of 'x', then err.
type failAfter struct {
	n   int64
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	p = p[:min(int64(len(p)), f.n)]
	for i := range p {
		p[i] = 'x'
	}
	f.n -= int64(len(p))
	return len(p), nil
}

var errReader = errors.New("blobtest: reader failed")

// A Put whose reader fails stores nothing, returns an error that wraps the reader's
// (callers branch on it: an upload past its size limit is a 413) and keeps the old blob.
func testFailedPut(t *testing.T, s bb.BlobStore) {
	Put(t, s, "k/v", "old")
	for _, n := range []int64{0, 3, 12 << 20} { // at once, small, and past a multipart part
		_, err := s.Put(t.Context(), "k/v", &failAfter{n: n, err: errReader})
		if !errors.Is(err, errReader) {
			t.Errorf("Put with a reader failing after %d bytes = %v; want it to wrap the reader's error", n, err)
		}
		if got := Read(t, s, "k/v"); got != "old" {
			t.Errorf("after a failed Put of %d bytes = %q; want old", n, got)
		}
		_, err = s.Put(t.Context(), "k/new", &failAfter{n: n, err: errReader})
		if err == nil {
			t.Errorf("Put(new) with a failing reader succeeded")
		}
		if _, err := s.Open(t.Context(), "k/new"); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("Open after a failed first Put = %v; want CodeNotFound", err)
		}
	}
	list, err := s.List(t.Context(), "k/")
	if err != nil || len(list) != 1 || list[0].Size != 3 {
		t.Errorf("List after failed Puts = %+v, %v; want only k/v of 3 bytes", list, err)
	}
}

// Readers during replaces see one whole version, never a mix.
func testReplaceAtomic(t *testing.T, s bb.BlobStore) {
	const size = 256 << 10
	versions := []string{strings.Repeat("a", size), strings.Repeat("b", size)}
	Put(t, s, "atomic/blob", versions[0])
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { // ends when the readers are done
		for i := 1; ctx.Err() == nil; i++ {
			if _, err := s.Put(ctx, "atomic/blob", strings.NewReader(versions[i%2])); err != nil && ctx.Err() == nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	})
	for i := 0; i < 20; i++ {
		got := Read(t, s, "atomic/blob")
		if got != versions[0] && got != versions[1] {
			t.Errorf("read %d bytes mixing versions (first %q, last %q)", len(got), got[:1], got[len(got)-1:])
			break
		}
	}
	cancel()
	wg.Wait()
}

func testOpenNotFound(t *testing.T, s bb.BlobStore) {
	Put(t, s, "dir/file", "x")
	for _, key := range []string{"dir/nope", "dir", "nope/at/all"} {
		if _, err := s.Open(t.Context(), key); bb.CodeOf(err) != bb.CodeNotFound {
			t.Errorf("Open(%s) = %v; want CodeNotFound", key, err)
		}
	}
}

func testList(t *testing.T, s bb.BlobStore) {
	ctx := t.Context()
	before := time.Now().Add(-time.Minute)
	for _, k := range []string{"sessions/b/z", "sessions/a/recording/0000000002.json", "sessions/a/downloads/y",
		"sessions/a/recording/0000000010.json", "sessions/ab/downloads/z", "sessions/a/downloads/x-1.pdf", "top"} {
		Put(t, s, k, k)
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"sessions/a/", []string{"sessions/a/downloads/x-1.pdf", "sessions/a/downloads/y",
			"sessions/a/recording/0000000002.json", "sessions/a/recording/0000000010.json"}},
		{"sessions/a/recording/", []string{"sessions/a/recording/0000000002.json", "sessions/a/recording/0000000010.json"}},
		// A prefix is a string prefix, not a directory: sessions/a matches sessions/ab.
		{"sessions/a", []string{"sessions/a/downloads/x-1.pdf", "sessions/a/downloads/y",
			"sessions/a/recording/0000000002.json", "sessions/a/recording/0000000010.json", "sessions/ab/downloads/z"}},
		{"sessions/a/downloads/x", []string{"sessions/a/downloads/x-1.pdf"}},
		{"sessions/none/", []string{}},
		{"", []string{"sessions/a/downloads/x-1.pdf", "sessions/a/downloads/y", "sessions/a/recording/0000000002.json",
			"sessions/a/recording/0000000010.json", "sessions/ab/downloads/z", "sessions/b/z", "top"}},
	}
	for _, c := range cases {
		list, err := s.List(ctx, c.prefix)
		if err != nil {
			t.Errorf("List(%q): %v", c.prefix, err)
			continue
		}
		if got := Keys(list); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("List(%q) = %q; want %q", c.prefix, got, c.want)
		}
		for _, i := range list {
			if i.Size != int64(len(i.Key)) || i.ModTime.Before(before) || i.ModTime.After(time.Now().Add(time.Minute)) {
				t.Errorf("List(%q): %+v; want size %d and a ModTime of now", c.prefix, i, len(i.Key))
			}
		}
	}
	for _, p := range []string{"../", "/abs/", "a//"} {
		if _, err := s.List(ctx, p); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("List(%q) = %v; want CodeInvalid", p, err)
		}
	}
}

func testDeletePrefix(t *testing.T, s bb.BlobStore) {
	ctx := t.Context()
	for i := range 5 {
		Put(t, s, fmt.Sprintf("sessions/a/recording/%d", i), "r")
	}
	Put(t, s, "sessions/ab/downloads/z", "other session")
	if err := s.DeletePrefix(ctx, "sessions/a/"); err != nil {
		t.Fatal(err)
	}
	if list, err := s.List(ctx, "sessions/a/"); err != nil || len(list) != 0 {
		t.Errorf("left after DeletePrefix: %v, %v", Keys(list), err)
	}
	if got := Read(t, s, "sessions/ab/downloads/z"); got != "other session" {
		t.Errorf("sessions/ab after deleting sessions/a/ = %q", got)
	}
	if err := s.DeletePrefix(ctx, "sessions/a/"); err != nil {
		t.Errorf("DeletePrefix twice: %v", err)
	}
	if err := s.DeletePrefix(ctx, "never/there/"); err != nil {
		t.Errorf("DeletePrefix of nothing: %v", err)
	}
	for _, p := range []string{"", "/", "../", "a", "a/../", "a//", "./", "sessions/ab"} {
		if err := s.DeletePrefix(ctx, p); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("DeletePrefix(%q) = %v; want CodeInvalid", p, err)
		}
	}
	if got := Read(t, s, "sessions/ab/downloads/z"); got != "other session" {
		t.Errorf("sessions/ab after invalid deletes = %q", got)
	}
}

func testInvalidKeys(t *testing.T, s bb.BlobStore) {
	ctx := t.Context()
	for _, key := range []string{"", "/abs", "a/../../x", "..", "a//b", "a/./b", "a/", `a\b`, "a\x00b", strings.Repeat("k", 1025)} {
		if _, err := s.Put(ctx, key, strings.NewReader("x")); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("Put(%.20q) = %v; want CodeInvalid", key, err)
		}
		if _, err := s.Open(ctx, key); bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("Open(%.20q) = %v; want CodeInvalid", key, err)
		}
	}
	if list, err := s.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("stored by invalid Puts: %v, %v", Keys(list), err)
	}
}

// cancelAfter cancels a context once n bytes were read.
type cancelAfter struct {
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		time.Sleep(10 * time.Millisecond) // the store sees ctx done on its next step
	}
	p = p[:min(int64(len(p)), max(c.n, 1))]
	clear(p)
	c.n -= int64(len(p))
	return len(p), nil
}

func testCancel(t *testing.T, s bb.BlobStore) {
	Put(t, s, "c/v", "old")
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Put(done, "c/v", strings.NewReader("new")); err == nil {
		t.Error("Put with a cancelled context succeeded")
	}
	if _, err := s.Open(done, "c/v"); err == nil {
		t.Error("Open with a cancelled context succeeded")
	}
	if _, err := s.List(done, "c/"); err == nil {
		t.Error("List with a cancelled context succeeded")
	}
	if err := s.DeletePrefix(done, "c/"); err == nil {
		t.Error("DeletePrefix with a cancelled context succeeded")
	}
	// Cancelled in the middle of a stream (an endless one: only ctx can stop it).
	for _, n := range []int64{100 << 10, 12 << 20} {
		ctx, cancel := context.WithCancel(t.Context())
		if _, err := s.Put(ctx, "c/v", &cancelAfter{n: n, cancel: cancel}); !errors.Is(err, context.Canceled) {
			t.Errorf("Put cancelled after %d bytes = %v; want context.Canceled", n, err)
		}
		cancel()
	}
	if got := Read(t, s, "c/v"); got != "old" {
		t.Errorf("after cancelled Puts = %q; want old", got)
	}
}

// gen is a deterministic endless byte stream that is not all one value.
type gen struct{ i uint64 }

func (g *gen) Read(p []byte) (int, error) {
	for k := range p {
		g.i++
		p[k] = byte(g.i*2654435761>>13) ^ byte(g.i)
	}
	return len(p), nil
}

// heapPeak samples the heap until stop and returns the growth over its start.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // ends when stop closes done
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak - base
	}
}

func testLarge(t *testing.T, s bb.BlobStore, opts Options) {
	ctx := t.Context()
	want := sha256.New()
	if _, err := io.CopyN(want, &gen{}, opts.LargeSize); err != nil {
		t.Fatal(err)
	}
	stop := heapPeak()
	n, err := s.Put(ctx, "large/blob", io.LimitReader(&gen{}, opts.LargeSize))
	growth := stop()
	if err != nil || n != opts.LargeSize {
		t.Fatalf("Put(large) = %d, %v; want %d", n, err, opts.LargeSize)
	}
	t.Logf("Put of %d MiB: heap grew %.1f MiB at most", opts.LargeSize>>20, float64(growth)/(1<<20))
	if growth > opts.MaxHeapGrowth {
		t.Errorf("heap grew by %d MiB while putting %d MiB; want at most %d MiB (a store streams)",
			growth>>20, opts.LargeSize>>20, opts.MaxHeapGrowth>>20)
	}
	list, err := s.List(ctx, "large/")
	if err != nil || len(list) != 1 || list[0].Size != opts.LargeSize {
		t.Errorf("List(large/) = %+v, %v", list, err)
	}
	stop = heapPeak()
	r, err := s.Open(ctx, "large/blob")
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	m, err := io.Copy(got, r)
	r.Close()
	growth = stop()
	if err != nil || m != opts.LargeSize {
		t.Fatalf("read large = %d, %v", m, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("the large blob read back differs from what was put")
	}
	t.Logf("Open of %d MiB: heap grew %.1f MiB at most", opts.LargeSize>>20, float64(growth)/(1<<20))
	if growth > opts.MaxHeapGrowth {
		t.Errorf("heap grew by %d MiB while reading %d MiB; want at most %d MiB", growth>>20, opts.LargeSize>>20, opts.MaxHeapGrowth>>20)
	}
}
