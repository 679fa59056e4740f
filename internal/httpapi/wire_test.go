package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
)

func TestFormatTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{name: "UTC with milliseconds", in: time.Date(2026, 5, 3, 12, 53, 37, 151_000_000, time.UTC), want: "2026-05-03T12:53:37.151Z"},
		{name: "other zone becomes UTC", in: time.Date(2026, 5, 3, 14, 53, 37, 151_000_000, time.FixedZone("CEST", 2*3600)), want: "2026-05-03T12:53:37.151Z"},
		{name: "whole seconds keep .000", in: time.Date(2023, 11, 7, 5, 31, 56, 0, time.UTC), want: "2023-11-07T05:31:56.000Z"},
		{name: "sub-millisecond truncated", in: time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC), want: "2026-01-02T03:04:05.999Z"},
		{name: "zero is empty", in: time.Time{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatTime(tt.in); got != tt.want {
				t.Errorf("formatTime(%v) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestToWireSession(t *testing.T) {
	t0 := time.Date(2026, 5, 3, 12, 53, 37, 151_000_000, time.UTC)
	cpu, mem := int64(12), int64(345)
	full := &bb.Session{
		ID: "s1", ProjectID: "p1", Status: bb.StatusCompleted,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Minute), StartedAt: t0, ExpiresAt: t0.Add(5 * time.Minute), EndedAt: t0.Add(time.Minute),
		KeepAlive: true, Region: bb.RegionUSEast1, ProxyBytes: 42, ContextID: "c1",
		UserMetadata: json.RawMessage(`{"env":"staging"}`), AvgCPUUsage: &cpu, MemoryUsage: &mem,
		EndReason: "released", NodeID: "n1", PID: 99, Request: json.RawMessage(`{"secret":"x"}`),
	}
	tests := []struct {
		name string
		in   *bb.Session
		want string
	}{
		{
			name: "every field",
			in:   full,
			want: `{"id":"s1","createdAt":"2026-05-03T12:53:37.151Z","updatedAt":"2026-05-03T12:54:37.151Z","projectId":"p1",
				"startedAt":"2026-05-03T12:53:37.151Z","expiresAt":"2026-05-03T12:58:37.151Z","endedAt":"2026-05-03T12:54:37.151Z",
				"status":"COMPLETED","proxyBytes":42,"keepAlive":true,"region":"us-east-1","contextId":"c1",
				"userMetadata":{"env":"staging"},"avgCpuUsage":12,"memoryUsage":345}`,
		},
		{
			name: "optional fields omitted",
			in: &bb.Session{ID: "s2", ProjectID: "p1", Status: bb.StatusRunning, CreatedAt: t0, UpdatedAt: t0, StartedAt: t0,
				ExpiresAt: t0, Region: bb.RegionUSWest2, UserMetadata: json.RawMessage(`null`)},
			want: `{"id":"s2","createdAt":"2026-05-03T12:53:37.151Z","updatedAt":"2026-05-03T12:53:37.151Z","projectId":"p1",
				"startedAt":"2026-05-03T12:53:37.151Z","expiresAt":"2026-05-03T12:53:37.151Z",
				"status":"RUNNING","proxyBytes":0,"keepAlive":false,"region":"us-west-2"}`,
		},
		{
			name: "missing region is us-west-2",
			in:   &bb.Session{ID: "s3", Status: bb.StatusPending, CreatedAt: t0, UpdatedAt: t0, StartedAt: t0, ExpiresAt: t0},
			want: `{"id":"s3","createdAt":"2026-05-03T12:53:37.151Z","updatedAt":"2026-05-03T12:53:37.151Z","projectId":"",
				"startedAt":"2026-05-03T12:53:37.151Z","expiresAt":"2026-05-03T12:53:37.151Z",
				"status":"PENDING","proxyBytes":0,"keepAlive":false,"region":"us-west-2"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(toWireSession(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, want); diff != "" {
				t.Errorf("toWireSession mismatch (-got +want):\n%s", diff)
			}
		})
	}
}

func TestToWireProject(t *testing.T) {
	t0 := time.Date(2026, 5, 3, 12, 53, 37, 151_000_000, time.UTC)
	p := &bb.Project{ID: "p1", Name: "Default", OwnerID: "o1", DefaultTimeout: 300, Concurrency: 25, CreatedAt: t0, UpdatedAt: t0}
	b, err := json.Marshal(toWireProject(p))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"p1","name":"Default","ownerId":"o1","defaultTimeout":300,"concurrency":25,` +
		`"createdAt":"2026-05-03T12:53:37.151Z","updatedAt":"2026-05-03T12:53:37.151Z"}`
	if string(b) != want {
		t.Errorf("toWireProject = %s; want %s", b, want)
	}
	b, err = json.Marshal(toWireUsage(bb.ProjectUsage{BrowserMinutes: 3, ProxyBytes: 7}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"browserMinutes":3,"proxyBytes":7}`; string(b) != want {
		t.Errorf("toWireUsage = %s; want %s", b, want)
	}
}
