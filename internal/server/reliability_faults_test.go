package server

// The parts of the reliability run (reliability_run_test.go) that inject faults: many
// concurrent clients, a Chromium crash storm, a locked store and a full disk.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// relClients runs n API clients at once for 30 s: lists, gets, and creates followed by
// releases, and counts the answers by status.
func relClients(t *testing.T, bin string, res *relResults, n int) {
	part := fmt.Sprintf("%d concurrent API clients for 30 s", n)
	dir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, bin, dir, "--pool-size", "2", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	ids := createN(t, p.URL, 4, 2, map[string]any{"keepAlive": true})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n}, Timeout: time.Minute}
	defer hc.CloseIdleConnections()

	type key struct{ op, status string }
	var mu sync.Mutex
	counts := map[key]int{}
	lat := map[string][]time.Duration{}
	var bad []string
	note := func(op string, code int, err error, d time.Duration, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		st := strconv.Itoa(code)
		if err != nil {
			st = "transport error"
			if len(bad) < 5 {
				bad = append(bad, op+": "+err.Error())
			}
		} else if code >= 500 && len(bad) < 5 {
			bad = append(bad, fmt.Sprintf("%s: %d %s", op, code, body))
		}
		counts[key{op, st}]++
		lat[op] = append(lat[op], d)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	g0 := goroutines(t, p.URL)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				r := rand.IntN(100)
				var op, method, path, body string
				switch {
				case r < 45:
					op, method, path = "GET /v1/sessions", "GET", "/v1/sessions"
				case r < 90:
					op, method, path = "GET /v1/sessions/{id}", "GET", "/v1/sessions/"+ids[rand.IntN(len(ids))]
				default:
					op, method, path, body = "POST /v1/sessions (create)", "POST", "/v1/sessions", "{}"
				}
				s := time.Now()
				// A request the deadline cuts short is not the server's answer: use a
				// context of its own so that the last ones finish.
				rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
				code, _, b, err := relDo(rctx, hc, p.URL, method, path, body)
				note(op, code, err, time.Since(s), b)
				if op == "POST /v1/sessions (create)" && code == http.StatusCreated {
					s = time.Now()
					code, _, b, err = relDo(rctx, hc, p.URL, "POST", "/v1/sessions/"+relID(b), `{"status":"REQUEST_RELEASE"}`)
					note("POST /v1/sessions/{id} (release)", code, err, time.Since(s), b)
				}
				rcancel()
			}
		})
	}
	wg.Wait()
	took := time.Since(t0)
	gPeak := goroutines(t, p.URL)
	var total, fivexx, terr int
	ops := map[string]bool{}
	for k, v := range counts {
		total += v
		ops[k.op] = true
		if k.status == "transport error" {
			terr += v
		} else if k.status >= "500" {
			fivexx += v
		}
	}
	res.add(part, "requests (in "+took.Round(time.Second).String()+")", fmt.Sprintf("%d (%.0f/s)", total, float64(total)/took.Seconds()), "")
	res.add(part, "5xx answers", strconv.Itoa(fivexx), "0")
	res.add(part, "transport errors (refused, reset, timeout)", strconv.Itoa(terr), "0")
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for op := range ops {
			if !yield(op) {
				return
			}
		}
	}) {
		var dist []string
		for k, v := range counts {
			if k.op == op {
				dist = append(dist, fmt.Sprintf("%s × %d", k.status, v))
			}
		}
		slices.Sort(dist)
		l := lat[op]
		res.add(part, op, fmt.Sprintf("%s; p50 %s, p99 %s", strings.Join(dist, ", "), ms(pct(l, 50)), ms(pct(l, 99))), "no 5xx")
	}
	res.add(part, "server goroutines before / right after", fmt.Sprintf("%d / %d", g0, gPeak), "")
	if fivexx > 0 || terr > 0 {
		t.Errorf("%d 5xx, %d transport errors; first: %v", fivexx, terr, bad)
	}
	for _, id := range ids {
		call(t, p.URL, "POST", "/v1/sessions/"+id, testAPIKey, map[string]string{"status": "REQUEST_RELEASE"})
	}
	var live []apiSession
	callJSON(t, p.URL, "GET", "/v1/sessions?status=RUNNING", testAPIKey, nil, 200, &live)
	res.add(part, "RUNNING sessions left after releasing the 4 kept ones", strconv.Itoa(len(live)), "0")
	if len(live) != 0 {
		t.Errorf("%d sessions still RUNNING", len(live))
	}
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("server after SIGTERM: %v", err)
	}
	assertNoLeaks(t, dir)
}

// relCrashStorm SIGKILLs the main Chromium process of 10 sessions at once and measures
// how long each session takes to turn ERROR.
func relCrashStorm(t *testing.T, bin string, res *relResults) {
	const part = "Chromium crash storm (10 sessions)"
	dir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, bin, dir, "--pool-size", "0", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	ids := createN(t, p.URL, 10, 2, map[string]any{"keepAlive": true})
	pids := browserPIDs(t, dir)
	res.add(part, "main Chromium processes found", strconv.Itoa(len(pids)), "10")
	if len(pids) != 10 {
		t.Fatalf("found %d main Chromium processes; want 10", len(pids))
	}
	killed := time.Now()
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	took := make([]time.Duration, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			for time.Since(killed) < 30*time.Second {
				code, _, b, err := relDo(t.Context(), http.DefaultClient, p.URL, "GET", "/v1/sessions/"+id, "")
				if err == nil && code == 200 && bytes.Contains(b, []byte(`"status":"ERROR"`)) {
					took[i] = time.Since(killed)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			took[i] = -1
		})
	}
	wg.Wait()
	var within, missing int
	for _, d := range took {
		if d < 0 {
			missing++
		} else if d <= time.Second {
			within++
		}
	}
	sorted := slices.Clone(took)
	res.add(part, "sessions ERROR within 1 s", fmt.Sprintf("%d of 10", within), "10 of 10")
	res.add(part, "kill → ERROR seen by GET (10 ms polls): min / p50 / max", fmt.Sprintf("%s / %s / %s", ms(pct(sorted, 0)), ms(pct(sorted, 50)), ms(pct(sorted, 100))), "≤ 1000 ms")
	if within != 10 {
		t.Errorf("%d of 10 sessions ERROR within 1 s (%d never within 30 s): %v", within, missing, took)
	}
	deadline := time.Now().Add(10 * time.Second)
	for relProcs(dir, p.cmd.Process.Pid)["total"] > 0 || entries(filepath.Join(dir, "run")) > 0 {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.add(part, "processes / run/ entries left after the storm", fmt.Sprintf("%s / %d (after %s)", fmtCounts(relProcs(dir, p.cmd.Process.Pid)),
		entries(filepath.Join(dir, "run")), time.Since(killed).Round(time.Millisecond)), "0 / 0")
	code, r := readyz(t, p.URL, testMetricsToken)
	res.add(part, "/readyz after the storm", fmt.Sprintf("%d ready=%v", code, r.Ready), "200 ready=true")
	s := p.URL
	var sess apiSession
	callJSON(t, s, "POST", "/v1/sessions", testAPIKey, map[string]any{}, 201, &sess)
	callJSON(t, s, "POST", "/v1/sessions/"+sess.ID, testAPIKey, map[string]any{"status": "REQUEST_RELEASE"}, 200, nil)
	res.add(part, "create + release after the storm", "201, 200", "201, 200")
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("server after SIGTERM: %v", err)
	}
	assertNoLeaks(t, dir)
}

// relStoreBusy holds SQLite's write lock for 15 s while 5 sessions are released.
func relStoreBusy(t *testing.T, bin string, res *relResults) {
	const part = "store busy (write lock held 15 s, 5 releases)"
	dir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, bin, dir, "--pool-size", "0", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	ids := createN(t, p.URL, 5, 2, map[string]any{"keepAlive": true})

	unlock := sqlitetest.LockWrites(t, filepath.Join(dir, "browserd.db"))
	locked := time.Now()

	type answer struct {
		code  int
		retry string
		took  time.Duration
		err   error
	}
	answers := make([]answer, len(ids))
	// A create at the same time: it needs a write too.
	var created answer
	var createdBody []byte
	createDone := make(chan struct{})
	go func() {
		defer close(createDone)
		s := time.Now()
		code, h, b, err := relDo(t.Context(), http.DefaultClient, p.URL, "POST", "/v1/sessions", "{}")
		created, createdBody = answer{code: code, took: time.Since(s), err: err}, b
		if h != nil {
			created.retry = h.Get("x-should-retry")
		}
	}()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			s := time.Now()
			code, h, _, err := relDo(t.Context(), http.DefaultClient, p.URL, "POST", "/v1/sessions/"+id, `{"status":"REQUEST_RELEASE"}`)
			answers[i] = answer{code: code, took: time.Since(s), err: err}
			if h != nil {
				answers[i].retry = h.Get("x-should-retry")
			}
		})
	}
	wg.Wait()
	var dist []string
	var ok int
	var slowest time.Duration
	for _, a := range answers {
		slowest = max(slowest, a.took)
		switch {
		case a.err != nil:
			dist = append(dist, "error "+a.err.Error())
		case a.code == 503 && a.retry == "true", a.code == 200:
			ok++
			dist = append(dist, fmt.Sprintf("%d (x-should-retry %q)", a.code, a.retry))
		default:
			dist = append(dist, fmt.Sprintf("%d (x-should-retry %q)", a.code, a.retry))
		}
	}
	res.add(part, "release answers", strings.Join(dist, ", "), "503 + x-should-retry: true, or 200")
	res.add(part, "slowest release answer", ms(slowest), "")
	if ok != len(ids) {
		t.Errorf("release answers while locked: %v", dist)
	}
	// Other requests while the lock is held.
	code, _, _, _ := relDo(t.Context(), http.DefaultClient, p.URL, "GET", "/v1/sessions/"+ids[0], "")
	res.add(part, "GET a session while locked", strconv.Itoa(code), "200")
	answered := time.Now()
	for len(browserPIDs(t, dir)) > 0 && time.Since(answered) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	left := len(browserPIDs(t, dir))
	res.add(part, "browsers still running 3 s after the releases answered (lock still held)", strconv.Itoa(left), "0")
	if left > 0 {
		t.Errorf("%d browsers still run 3 s after their releases answered", left)
	}
	time.Sleep(15*time.Second - time.Since(locked))
	unlock()
	released := time.Now()
	res.add(part, "lock held", time.Since(locked).Round(100*time.Millisecond).String(), "15 s")
	<-createDone
	res.add(part, "create sent with the releases", fmt.Sprintf("%d (x-should-retry %q) %v after %s", created.code, created.retry, created.err,
		created.took.Round(100*time.Millisecond)), "503 + x-should-retry: true (or 201)")
	if created.code == http.StatusCreated {
		ids = append(ids, relID(createdBody)) // must end too
		relDo(t.Context(), http.DefaultClient, p.URL, "POST", "/v1/sessions/"+relID(createdBody), `{"status":"REQUEST_RELEASE"}`)
	} else if created.code != http.StatusServiceUnavailable || created.retry != "true" {
		t.Errorf("create while the store was locked = %d (x-should-retry %q) %s; want 503 with x-should-retry: true, or 201", created.code, created.retry, createdBody)
	}

	done := map[string]time.Duration{}
	for len(done) < len(ids) && time.Since(released) < 3*time.Minute {
		for _, id := range ids {
			if _, ok := done[id]; ok {
				continue
			}
			code, _, b, err := relDo(t.Context(), http.DefaultClient, p.URL, "GET", "/v1/sessions/"+id, "")
			if err == nil && code == 200 && !bytes.Contains(b, []byte(`"status":"RUNNING"`)) && bytes.Contains(b, []byte(`"endedAt":"`)) {
				done[id] = time.Since(released)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	var worst time.Duration
	for _, d := range done {
		worst = max(worst, d)
	}
	var statuses []string
	for _, id := range ids {
		var sess apiSession
		callJSON(t, p.URL, "GET", "/v1/sessions/"+id, testAPIKey, nil, 200, &sess)
		statuses = append(statuses, sess.Status)
	}
	res.add(part, "sessions ended (not RUNNING, endedAt) after the lock went", fmt.Sprintf("%d of %d, the last %s after", len(done), len(ids), worst.Round(100*time.Millisecond)), "all, within the retry backoff")
	res.add(part, "final statuses", strings.Join(statuses, ", "), "COMPLETED")
	if len(done) != len(ids) {
		t.Errorf("%d of %d sessions ended after the lock went: %v", len(done), len(ids), statuses)
	}
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("server after SIGTERM: %v", err)
	}
	assertNoLeaks(t, dir)
}

// relDiskFull runs a server whose data dir is a 64 MiB tmpfs, fills the disk and frees it.
func relDiskFull(t *testing.T, bin string, res *relResults) {
	const part = "disk full (data dir on a 64 MiB tmpfs)"
	if os.Geteuid() != 0 {
		res.add(part, "skipped", "needs root to mount a tmpfs", "")
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.MkdirAll(mnt, 0o711); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m,mode=0711", "tmpfs", mnt).CombinedOutput(); err != nil {
		res.add(part, "skipped", fmt.Sprintf("mount: %v %s", err, bytes.TrimSpace(out)), "")
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { // after the server's cleanup (registered later, runs first)
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	dir := filepath.Join(mnt, "data")
	p := startProcess(t, bin, dir, "--pool-size", "0", "--max-sessions", "24", "--metrics-token", testMetricsToken)
	ids := createN(t, p.URL, 2, 2, map[string]any{"keepAlive": true})
	var st syscall.Statfs_t
	free := func() int64 {
		if err := syscall.Statfs(mnt, &st); err != nil {
			t.Fatal(err)
		}
		return int64(st.Bavail) * st.Bsize
	}
	res.add(part, "free with 2 sessions running", fmt.Sprintf("%.1f MiB", float64(free())/(1<<20)), "")

	fill := filepath.Join(mnt, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	// Keep the disk full: what a browser or the database frees (a released session's
	// profile is deleted) is taken again at once, until stopFilling.
	fillDone := make(chan struct{})
	stopFilling := sync.OnceFunc(func() {
		close(fillDone)
		f.Close()
	})
	var filling sync.WaitGroup
	filling.Go(func() {
		for {
			select {
			case <-fillDone:
				return
			default:
			}
			if _, err := f.Write(buf[:4096]); err != nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	defer func() { stopFilling(); filling.Wait() }()
	time.Sleep(100 * time.Millisecond)
	res.add(part, "free after filling", fmt.Sprintf("%d bytes", free()), "0")

	code, r := readyz(t, p.URL, testMetricsToken)
	res.add(part, "/readyz with the disk full", fmt.Sprintf("%d ready=%v disk=%q", code, r.Ready, r.Checks["disk"].Detail), "503 not ready")
	s := time.Now()
	code, h, _, err := relDo(t.Context(), http.DefaultClient, p.URL, "POST", "/v1/sessions", "{}")
	res.add(part, "create with the disk full", fmt.Sprintf("%d (x-should-retry %q) %v in %s", code, h.Get("x-should-retry"), err, ms(time.Since(s))), "503 + x-should-retry: true")
	if code != http.StatusServiceUnavailable {
		t.Errorf("create with the disk full = %d; want 503", code)
	}
	code, _, _, err = relDo(t.Context(), http.DefaultClient, p.URL, "GET", "/v1/sessions/"+ids[0], "")
	res.add(part, "GET a session with the disk full", fmt.Sprintf("%d %v", code, err), "200")
	s = time.Now()
	code, h, b, err := relDo(t.Context(), http.DefaultClient, p.URL, "POST", "/v1/sessions/"+ids[0], `{"status":"REQUEST_RELEASE"}`)
	res.add(part, "release with the disk full", fmt.Sprintf("%d (x-should-retry %q) %v in %s: %.90s", code, h.Get("x-should-retry"), err, ms(time.Since(s)), b), "200, or 503 + x-should-retry: true")
	if code != 200 && (code != 503 || h.Get("x-should-retry") != "true") {
		t.Errorf("release with the disk full = %d %s", code, b)
	}
	time.Sleep(8 * time.Second) // the end's retries at 1, 3 and 7 s fail
	var s1, s2 apiSession
	callJSON(t, p.URL, "GET", "/v1/sessions/"+ids[0], testAPIKey, nil, 200, &s1)
	callJSON(t, p.URL, "GET", "/v1/sessions/"+ids[1], testAPIKey, nil, 200, &s2)
	res.add(part, "released session / other session 8 s into the full disk", fmt.Sprintf("%s / %s (free: %d bytes; browsers running: %d)",
		s1.Status, s2.Status, free(), len(browserPIDs(t, dir))), "RUNNING (end pending) / RUNNING")
	stopFilling()
	filling.Wait()
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	ended := map[string]time.Duration{}
	for time.Since(freed) < 2*time.Minute && ended[ids[0]] == 0 {
		var sess apiSession
		callJSON(t, p.URL, "GET", "/v1/sessions/"+ids[0], testAPIKey, nil, 200, &sess)
		if sess.Status != "RUNNING" && sess.EndedAt != "" {
			ended[ids[0]] = time.Since(freed)
			res.add(part, "released session after freeing the disk", fmt.Sprintf("%s after %s", sess.Status, ended[ids[0]].Round(100*time.Millisecond)), "COMPLETED")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ended[ids[0]] == 0 {
		t.Errorf("released session still RUNNING 2 min after the disk was freed")
	}
	code, r = readyz(t, p.URL, testMetricsToken)
	res.add(part, "/readyz after freeing", fmt.Sprintf("%d ready=%v", code, r.Ready), "200 ready=true")
	code, _, b, _ = relDo(t.Context(), http.DefaultClient, p.URL, "POST", "/v1/sessions", "{}")
	res.add(part, "create after freeing", strconv.Itoa(code), "201")
	if code == http.StatusCreated {
		call(t, p.URL, "POST", "/v1/sessions/"+idOf(t, b), testAPIKey, map[string]string{"status": "REQUEST_RELEASE"})
	}
	call(t, p.URL, "POST", "/v1/sessions/"+ids[1], testAPIKey, map[string]string{"status": "REQUEST_RELEASE"})
	var live []apiSession
	callJSON(t, p.URL, "GET", "/v1/sessions?status=RUNNING", testAPIKey, nil, 200, &live)
	res.add(part, "RUNNING sessions at the end", strconv.Itoa(len(live)), "0")
	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("server after SIGTERM: %v", err)
	}
	assertNoLeaks(t, dir)
}
