package chrome

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     cpuStat
		wantErr  bool
	}{
		{
			name: "chromium renderer",
			in:   "4242 (chromium) S 4200 4200 4200 0 -1 4194560 5000 0 0 0 120 30 7 3 20 0 12 0 9000 1000000 5000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n",
			want: cpuStat{state: 'S', pgrp: 4200, ticks: 160},
		},
		{
			name: "comm with spaces and parentheses",
			in:   "7 (a) b (c)) R 1 9 9 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 0 0 0\n",
			want: cpuStat{state: 'R', pgrp: 9, ticks: 10},
		},
		{name: "empty", in: "", wantErr: true},
		{name: "no comm", in: "1 S 0 1 1 0", wantErr: true},
		{name: "short", in: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2", wantErr: true},
		{name: "bad pgrp", in: "1 (x) S 0 x 1 0 -1 0 0 0 0 0 1 2 3 4 20", wantErr: true},
		{name: "negative time", in: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 -2 3 4 20", wantErr: true},
		{name: "huge time", in: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 99999999999999999 3 4 20", wantErr: true},
		{name: "long state", in: "1 (x) SS 0 1 1 0 -1 0 0 0 0 0 1 2 3 4 20", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStat(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(got, tt.want, cmp.AllowUnexported(cpuStat{})); !tt.wantErr && diff != "" {
				t.Errorf("parseStat(%q) (-got +want):\n%s", tt.in, diff)
			}
		})
	}
	// Our own process parses, in our own process group.
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	st, err := parseStat(data)
	if err != nil || st.pgrp != syscall.Getpgrp() {
		t.Errorf("parseStat(/proc/self/stat) = %+v, %v; want pgrp %d", st, err, syscall.Getpgrp())
	}
}

// TestGroupUsage measures this test binary's process group after burning CPU.
func TestGroupUsage(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("no smaps_rollup:", err)
	}
	pgid := syscall.Getpgrp()
	before, err := GroupUsage(pgid)
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		_ = strconv.Itoa(int(time.Now().UnixNano())) // burn CPU; the result is not needed
	}
	after, err := GroupUsage(pgid)
	if err != nil {
		t.Fatal(err)
	}
	if after.CPU <= before.CPU || after.Memory <= 0 {
		t.Errorf("GroupUsage: before %+v, after %+v; want CPU to grow and memory > 0", before, after)
	}
	if _, err := GroupUsage(1 << 30); err == nil {
		t.Error("GroupUsage(unused pgid) = nil error")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (chromium) S 4200 4200 4200 0 -1 4194560 5000 0 0 0 120 30 7 3 20 0 12 0\n"))
	f.Add([]byte("7 (a) b (c)) R 1 9 9 0 -1 0 0 0 0 0 1 2 3 4 20\n"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStat(data)
		if err == nil && (st.ticks < 0 || st.ticks > 4*maxTicks) {
			t.Errorf("parseStat(%q) ticks = %d", data, st.ticks)
		}
	})
}
