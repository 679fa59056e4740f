package blobspool_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/blobspool"
	"github.com/browserd/browserd/internal/fsblob"
)

// FuzzLoad feeds arbitrary bytes as a spool entry to New, as a torn or foreign file
// left in the spool directory would be: it never panics; an entry it loads is one a
// Put or DeletePrefix could have written (its key valid), and what it refuses is kept
// aside as .corrupt, never uploaded.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("BDSP\x00\x03k/vdata"), false)
	f.Add([]byte("BDSP\x00\x02a/"), true)
	f.Add([]byte("BDSP\x00\x05../xx"), false)
	f.Add([]byte("BDSP\xff\xff"), false)
	f.Add([]byte("BD"), true)
	f.Fuzz(func(t *testing.T, data []byte, del bool) {
		dir := t.TempDir()
		name := "00000000000000000001.put"
		if del {
			name = "00000000000000000001.del"
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
		remote, err := fsblob.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		sp, err := blobspool.New(blobspool.Config{Dir: dir, Remote: remote})
		if err != nil {
			t.Fatal(err)
		}
		sp.Close()
		_, err = os.Stat(filepath.Join(dir, name+".corrupt"))
		if keptAside := err == nil; keptAside == validEntry(data, del) {
			t.Fatalf("entry %q (delete %v): kept aside %v; want it kept aside exactly when invalid", data, del, keptAside)
		}
		list, err := remote.List(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range list {
			if !bb.ValidBlobKey(b.Key) {
				t.Fatalf("uploaded an invalid key %q", b.Key)
			}
		}
	})
}

// validEntry reports whether data is an entry New must load: the magic, a key length,
// the key, and a key valid for its kind.
func validEntry(data []byte, del bool) bool {
	if len(data) < 6 || string(data[:4]) != "BDSP" {
		return false
	}
	n := int(binary.BigEndian.Uint16(data[4:6]))
	if len(data) < 6+n {
		return false
	}
	key := string(data[6 : 6+n])
	if del {
		dir, ok := strings.CutSuffix(key, "/")
		return ok && bb.ValidBlobKey(dir)
	}
	return bb.ValidBlobKey(key)
}
