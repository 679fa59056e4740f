package chrome

import (
	"os"
	"testing"
)

func TestParsePSS(t *testing.T) {
	const rollup = "55d0c0a00000-7ffd2b5fe000 ---p 00000000 00:00 0                          [rollup]\n" +
		"Rss:              103464 kB\nPss:               41122 kB\nPss_Dirty:         20000 kB\n"
	got, err := parsePSS([]byte(rollup))
	if err != nil || got != 41122<<10 {
		t.Errorf("parsePSS = %d, %v; want %d", got, err, 41122<<10)
	}
	for _, bad := range []string{"", "Rss: 1 kB\n", "Pss: x kB\n", "Pss: 12\n", "Pss: -1 kB\n", "Pss: 1 MB\n"} {
		if n, err := parsePSS([]byte(bad)); err == nil {
			t.Errorf("parsePSS(%q) = %d, nil; want an error", bad, n)
		}
	}
	// Our own process: a real smaps_rollup parses.
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Skip("no smaps_rollup:", err)
	}
	if n, err := parsePSS(data); err != nil || n <= 0 {
		t.Errorf("parsePSS(/proc/self/smaps_rollup) = %d, %v", n, err)
	}
}

func FuzzParsePSS(f *testing.F) {
	f.Add([]byte("Rss: 10 kB\nPss: 5 kB\n"))
	f.Add([]byte("Pss:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := parsePSS(data)
		if err == nil && n < 0 {
			t.Errorf("negative PSS %d", n)
		}
	})
}
