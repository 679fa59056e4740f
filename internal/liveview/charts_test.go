package liveview

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

func TestComputeProjectUsage(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	sessions := []*bb.Session{
		// Day 8, 1 h, ended: completed, 100 proxy bytes.
		{Status: bb.StatusCompleted, CreatedAt: day(8, 10), StartedAt: day(8, 10), EndedAt: day(8, 11), ProxyBytes: 100},
		// Overlaps the first on day 8 (peak 2); timed out.
		{Status: bb.StatusTimedOut, CreatedAt: day(8, 10), StartedAt: day(8, 10).Add(30 * time.Minute), EndedAt: day(8, 12)},
		// Across midnight from day 9 to day 10: 2 h each side; ended in error on day 10.
		{Status: bb.StatusError, CreatedAt: day(9, 22), StartedAt: day(9, 22), EndedAt: day(10, 2), ProxyBytes: 7},
		// Still running since 11:00 on day 10 (1 h to now).
		{Status: bb.StatusRunning, CreatedAt: day(10, 11), StartedAt: day(10, 11)},
		// Before the window: not counted.
		{Status: bb.StatusCompleted, CreatedAt: day(1, 1), StartedAt: day(1, 1), EndedAt: day(1, 2), ProxyBytes: 1000},
	}
	got := computeProjectUsage(sessions, 3, now)
	want := projectUsage{
		Days: []int64{day(8, 0).Unix(), day(9, 0).Unix(), day(10, 0).Unix()},
		Sessions: map[bb.SessionStatus][]int{
			bb.StatusCompleted: {1, 0, 0}, bb.StatusTimedOut: {1, 0, 0}, bb.StatusError: {0, 1, 0}, bb.StatusRunning: {0, 0, 1},
		},
		BrowserMinutes:  []float64{60 + 90, 120, 120 + 60},
		PeakConcurrency: []int{2, 1, 1},
		ProxyBytes:      []int64{100, 0, 7},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("computeProjectUsage (-want +got):\n%s", diff)
	}
}
