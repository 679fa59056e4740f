package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/postgres"
)

// helperEnv, when set, makes the test binary a helper process of TestCreateFromProcesses
// instead of running the tests: it races creates against one project (helperMain).
const helperEnv = "BROWSERD_PGTEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// helperMain opens the store at BROWSERD_PGTEST_DSN, waits for the wall-clock start
// time BROWSERD_PGTEST_START (Unix ms), so that every process races at once, and then
// from BROWSERD_PGTEST_N goroutines creates a session in project BROWSERD_PGTEST_PROJECT
// with limit BROWSERD_PGTEST_LIMIT and a context named "race" in it. It prints
// "sessions OK LIMITED contexts OK DUPLICATE" and exits 0, or prints an unexpected
// error to stderr and exits 1.
func helperMain() int {
	getInt := func(name string) int {
		n, _ := strconv.Atoi(os.Getenv(name)) // 0 fails the run below
		return n
	}
	n, limit, start := getInt("BROWSERD_PGTEST_N"), getInt("BROWSERD_PGTEST_LIMIT"), getInt("BROWSERD_PGTEST_START")
	projectID := os.Getenv("BROWSERD_PGTEST_PROJECT")
	if n <= 0 || limit <= 0 || start <= 0 || projectID == "" {
		fmt.Fprintln(os.Stderr, "helper: missing BROWSERD_PGTEST_* settings")
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, os.Getenv("BROWSERD_PGTEST_DSN"), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer db.Close()
	// Warm the pool, so that the race is between queries, not connection setups.
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _ = db.Ping(ctx) }) // a failure shows in the creates below
	}
	wg.Wait()
	time.Sleep(time.Until(time.UnixMilli(int64(start))))
	var mu sync.Mutex
	var created, limited, contexts, duplicates int
	var unexpected []error
	for range n {
		wg.Go(func() {
			now := time.Now().UTC().Truncate(time.Millisecond)
			s := &bb.Session{ID: bb.NewID(), ProjectID: projectID, Status: bb.StatusPending, CreatedAt: now, StartedAt: now}
			serr := db.CreateSession(ctx, s, limit)
			c := &bb.Context{ID: bb.NewID(), ProjectID: projectID, Name: "Race", CreatedAt: now, UpdatedAt: now}
			cerr := db.CreateContext(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case serr == nil:
				created++
			case bb.CodeOf(serr) == bb.CodeLimit:
				limited++
			default:
				unexpected = append(unexpected, serr)
			}
			switch {
			case cerr == nil:
				contexts++
			case bb.CodeOf(cerr) == bb.CodeConflict:
				duplicates++
			default:
				unexpected = append(unexpected, cerr)
			}
		})
	}
	wg.Wait()
	if len(unexpected) > 0 {
		fmt.Fprintln(os.Stderr, "helper: unexpected errors:", unexpected)
		return 1
	}
	fmt.Printf("sessions %d %d contexts %d %d\n", created, limited, contexts, duplicates)
	return 0
}
