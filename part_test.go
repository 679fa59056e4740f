package browserd_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/chrome/chrometest"
	"github.com/google/go-cmp/cmp"
)

// tracePart is a SessionPart that writes every call it gets to a shared trace, as
// "<name> <point>", and fails where it is told to.
type tracePart struct {
	name  string
	trace *trace
	fail  string // "check", "prepare" or "started": that point returns an error
	m     *bb.Manager
	l     *chrometest.Launcher
	// seen is what the run found out during the session: whether Manager.Run found it
	// while the session was live, and the end record's value it set.
	foundLive bool
}

type trace struct {
	mu    sync.Mutex
	calls []string
}

func (tr *trace) add(format string, a ...any) {
	tr.mu.Lock()
	tr.calls = append(tr.calls, fmt.Sprintf(format, a...))
	tr.mu.Unlock()
}

func (tr *trace) get() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.calls...)
}

var errPart = errors.New("part failed")

func (p *tracePart) Check(context.Context, string, *bb.CreateSessionRequest) error {
	p.trace.add("%s check", p.name)
	if p.fail == "check" {
		return bb.Errorf(bb.CodeInvalid, "%s refuses", p.name)
	}
	return nil
}

func (p *tracePart) Prepare(_ context.Context, s *bb.Session, _ *bb.CreateSessionRequest, opts *bb.LaunchOptions) (bb.PartRun, error) {
	p.trace.add("%s prepare %s", p.name, s.Status)
	if p.fail == "prepare" {
		return nil, errPart
	}
	opts.Args = append(opts.Args, "--"+p.name) // parts may add to the launch
	return &traceRun{p: p, id: s.ID}, nil
}

type traceRun struct {
	p  *tracePart
	id string
}

func (r *traceRun) Started(_ context.Context, b bb.Browser) error {
	r.p.trace.add("%s started", r.p.name)
	if r.p.fail == "started" {
		return errPart
	}
	return nil
}

func (r *traceRun) Ending(status bb.SessionStatus) func(*bb.Session) {
	r.p.trace.add("%s ending %s", r.p.name, status)
	r.p.foundLive = r.p.m.Run(r.id, r.p) == r
	n := int64(len(r.p.name)) * 100 // a: 100; b: 100 too, so add the first letter
	n += int64(r.p.name[0])
	return func(s *bb.Session) { s.ProxyBytes = n }
}

func (r *traceRun) Stopped(_ context.Context, b bb.Browser, status bb.SessionStatus) {
	r.p.trace.add("%s stopped %s closed=%d", r.p.name, status, r.p.l.Closed())
}

func (r *traceRun) Ended(context.Context) {
	r.p.trace.add("%s ended closed=%d", r.p.name, r.p.l.Closed())
}

// TestSessionParts checks the seam's contract: the points in order (forward while a
// session starts, in reverse while it ends), what runs when a part fails, that a part
// may add launch flags and set values on the end record, and that Manager.Run finds a
// live session's run.
func TestSessionParts(t *testing.T) {
	tests := []struct {
		name     string
		failA    string // where part a fails
		failB    string // where part b fails
		want     []string
		wantCode bb.ErrorCode // of the create; "" for success
		launched int
	}{
		{
			name: "released",
			want: []string{"a check", "b check", "a prepare PENDING", "b prepare PENDING", "a started", "b started",
				"b ending COMPLETED", "a ending COMPLETED", "b stopped COMPLETED closed=0", "a stopped COMPLETED closed=0", "b ended closed=1", "a ended closed=1"},
			launched: 1,
		},
		{
			name: "check refuses", failB: "check",
			want: []string{"a check", "b check"}, wantCode: bb.CodeInvalid,
		},
		{
			name: "prepare fails", failB: "prepare",
			want: []string{"a check", "b check", "a prepare PENDING", "b prepare PENDING", "a ended closed=0"}, wantCode: bb.CodeInternal,
		},
		{
			name: "started fails", failA: "started",
			want:     []string{"a check", "b check", "a prepare PENDING", "b prepare PENDING", "a started", "b ended closed=1", "a ended closed=1"},
			wantCode: bb.CodeInternal, launched: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := &trace{}
				a := &tracePart{name: "a", trace: tr, fail: tt.failA}
				b := &tracePart{name: "b", trace: tr, fail: tt.failB}
				var args [][]string
				l := &chrometest.Launcher{OnLaunch: func(_ context.Context, o bb.LaunchOptions) error {
					args = append(args, o.Args)
					return nil
				}}
				e := newEnv(t, 1, l, bb.ManagerConfig{MaxSessions: 1, Parts: []bb.SessionPart{a, b}})
				a.m, b.m, a.l, b.l = e.m, e.m, l, l
				s, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{KeepAlive: true})
				if tt.wantCode != "" {
					if bb.CodeOf(err) != tt.wantCode {
						t.Fatalf("CreateSession = %v, %v; want code %s", s, err, tt.wantCode)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					if e.m.Run(s.ID, a) == nil || e.m.Run(s.ID, b) == nil || e.m.Run("nope", a) != nil {
						t.Error("Manager.Run does not find the live session's runs")
					}
					if _, err := e.m.ReleaseSession(t.Context(), e.p.ID, s.ID); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
					if !a.foundLive || !b.foundLive {
						t.Error("Manager.Run did not find the runs while they were ending")
					}
					if got, want := e.stored(t, s.ID).ProxyBytes, int64(100+'a'); got != want {
						t.Errorf("end record's proxyBytes = %d; want %d (a's Ending, applied last)", got, want)
					}
					if e.m.Run(s.ID, a) != nil {
						t.Error("Manager.Run finds an ended session's run")
					}
				}
				synctest.Wait()
				if diff := cmp.Diff(tt.want, tr.get()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
				if len(args) != tt.launched {
					t.Fatalf("%d launches; want %d", len(args), tt.launched)
				}
				if tt.launched == 1 {
					n := len(args[0])
					if n < 2 || args[0][n-2] != "--a" || args[0][n-1] != "--b" {
						t.Errorf("launch args = %q; want the parts' flags last, in order", args[0])
					}
				}
				a.fail, b.fail = "", ""
				e.wantFreed(t)
			})
		})
	}
}

// TestCreateChecksBeforeCapacity: a create the parts refuse gets its 4xx even on a full
// node, since retrying it could never succeed (docs/COMPATIBILITY.md, "Which error a
// create gets first").
func TestCreateChecksBeforeCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2, nil, bb.ManagerConfig{MaxSessions: 1}) // no session proxies here
		e.create(t, bb.CreateSessionRequest{KeepAlive: true})    // the node is full
		_, err := e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{KeepAlive: true, ProxyManaged: true})
		if bb.CodeOf(err) != bb.CodeInvalid {
			t.Errorf("create with proxies on a full node without proxies = %v (code %s); want %s", err, bb.CodeOf(err), bb.CodeInvalid)
		}
		_, err = e.m.CreateSession(t.Context(), e.p.ID, bb.CreateSessionRequest{KeepAlive: true})
		if bb.CodeOf(err) != bb.CodeLimit {
			t.Errorf("plain create on a full node = %v; want %s", err, bb.CodeLimit)
		}
	})
}
