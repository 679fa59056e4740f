package storetest

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

var errAbort = errors.New("storetest: abort")

// testUpdateSession checks that UpdateSession writes fn's changes, and nothing when fn
// fails.
func testUpdateSession(t *testing.T, st bb.Store) {
	p := newProject(t, st, bigLimit)
	ended := base.Add(3 * time.Minute)
	coded := bb.Errorf(bb.CodeConflict, "conflict")
	tests := []struct {
		name    string
		fn      func(s *bb.Session) error
		change  func(s *bb.Session) // applied to the expected session
		wantErr error
	}{
		{
			name: "end",
			fn: func(s *bb.Session) error {
				s.Status, s.EndedAt, s.UpdatedAt, s.EndReason = bb.StatusCompleted, ended, ended, "released"
				s.ProxyBytes, s.AvgCPUUsage, s.MemoryUsage = 99, ptr(int64(7)), ptr(int64(8))
				return nil
			},
			change: func(s *bb.Session) {
				s.Status, s.EndedAt, s.UpdatedAt, s.EndReason = bb.StatusCompleted, ended, ended, "released"
				s.ProxyBytes, s.AvgCPUUsage, s.MemoryUsage = 99, ptr(int64(7)), ptr(int64(8))
			},
		},
		{
			name: "clear optional fields",
			fn: func(s *bb.Session) error {
				s.EndedAt, s.AvgCPUUsage, s.UserMetadata, s.Settings = time.Time{}, nil, nil, bb.BrowserSettings{}
				return nil
			},
			change: func(s *bb.Session) {
				s.EndedAt, s.AvgCPUUsage, s.UserMetadata, s.Settings = time.Time{}, nil, nil, bb.BrowserSettings{}
			},
		},
		{
			name: "abort",
			fn: func(s *bb.Session) error {
				s.Status, s.PID = bb.StatusError, 1 // must not be written
				return errAbort
			},
			wantErr: errAbort,
		},
		{
			name: "abort with a coded error",
			fn: func(s *bb.Session) error {
				s.Status = bb.StatusError
				return coded
			},
			wantErr: coded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSession(p, base)
			s.Status, s.PID, s.AvgCPUUsage = bb.StatusRunning, 100, ptr(int64(1))
			s.UserMetadata = json.RawMessage(`{"k":"v"}`)
			s.Settings = bb.BrowserSettings{BlockAds: true}
			createSession(t, st, s)
			want := *s
			if tt.change != nil {
				tt.change(&want)
			}

			got, err := st.UpdateSession(t.Context(), s.ID, tt.fn)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("UpdateSession: %v", err)
			case tt.wantErr == nil:
				if diff := cmp.Diff(&want, got); diff != "" {
					t.Errorf("UpdateSession result (-want +got):\n%s", diff)
				}
			case !errors.Is(err, tt.wantErr) || bb.CodeOf(err) != bb.CodeOf(tt.wantErr):
				// fn's error must reach the caller: the Manager branches on it.
				t.Errorf("UpdateSession = %v (code %q); want fn's error %v (code %q)",
					err, bb.CodeOf(err), tt.wantErr, bb.CodeOf(tt.wantErr))
			}

			stored, err := st.Session(t.Context(), s.ID)
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			if diff := cmp.Diff(&want, stored); diff != "" {
				t.Errorf("stored session after UpdateSession (-want +got):\n%s", diff)
			}
		})
	}
}

// testUpdateSessionAtomic checks that concurrent read-modify-writes don't lose updates.
func testUpdateSessionAtomic(t *testing.T, st bb.Store) {
	const writers = 20
	p := newProject(t, st, bigLimit)
	s := createSession(t, st, newSession(p, base))
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			_, err := st.UpdateSession(t.Context(), s.ID, func(s *bb.Session) error {
				s.ProxyBytes++
				return nil
			})
			if err != nil {
				t.Errorf("UpdateSession: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := st.Session(t.Context(), s.ID)
	if err != nil {
		t.Fatalf("Session: %v", err)
	}
	if got.ProxyBytes != writers {
		t.Errorf("ProxyBytes after %d concurrent increments = %d; want %d", writers, got.ProxyBytes, writers)
	}
}
