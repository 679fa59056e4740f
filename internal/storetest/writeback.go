package storetest

import (
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// testContextWriteBacks: a record counts until it ends or lapses; records of other
// contexts and sessions are apart; ending twice is fine.
func testContextWriteBacks(t *testing.T, st bb.Store) {
	ctx := t.Context()
	c1, c2 := bb.NewID(), bb.NewID()
	s1, s2 := bb.NewID(), bb.NewID()
	count := func(c string) int {
		t.Helper()
		n, err := st.ContextWriteBacks(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(c1); n != 0 {
		t.Fatalf("write-backs of a new context = %d; want 0", n)
	}
	for _, s := range []string{s1, s2} {
		if err := st.BeginContextWriteBack(ctx, c1, s, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.BeginContextWriteBack(ctx, c1, s1, time.Minute); err != nil { // again: one record
		t.Fatal(err)
	}
	if n, m := count(c1), count(c2); n != 2 || m != 0 {
		t.Fatalf("write-backs = %d, %d; want 2, 0", n, m)
	}
	for range 2 {
		if err := st.EndContextWriteBack(ctx, c1, s1); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(c1); n != 1 {
		t.Fatalf("write-backs after one ended = %d; want 1", n)
	}
	if err := st.EndContextWriteBack(ctx, c1, s2); err != nil {
		t.Fatal(err)
	}
	// A record whose node died lapses after its ttl.
	if err := st.BeginContextWriteBack(ctx, c2, s1, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := count(c2); n != 1 {
		t.Fatalf("write-backs of c2 = %d; want 1", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(c2) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a write-back record with a 50 ms ttl still counts after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := count(c1); n != 0 {
		t.Fatalf("write-backs of c1 at the end = %d; want 0", n)
	}
}
