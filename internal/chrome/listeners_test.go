package chrome_test

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/browserd/browserd/internal/chrome"
)

func FuzzParseListeners(f *testing.F) {
	f.Add([]byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0 20 4 30 10 -1\n"), "12345")
	f.Add([]byte("0: 0100007F:ZZZZ 0 0A 0 0 0 0 0 1"), "1")
	f.Fuzz(func(t *testing.T, table []byte, inode string) {
		for _, p := range chrome.ParseListeners(table, map[string]bool{inode: true}) {
			if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 65535 {
				t.Fatalf("port %q", p)
			}
		}
	})
}

func TestParseListeners(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 20 4 30 10 -1
   1: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1
   2: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1
   3: 0100007F:1F91 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 444 1 0 20 4 30 10 -1
`)
	got := chrome.ParseListeners(table, map[string]bool{"111": true, "333": true, "444": true})
	if diff := cmp.Diff(got, []string{"8080"}); diff != "" {
		t.Errorf("listeners (-got +want):\n%s", diff)
	}
}
