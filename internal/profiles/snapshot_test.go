package profiles

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeTree creates files (name → content; a name ending in / is a directory) in dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns the files under dir (as writeTree takes them), directories included.
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			got[rel+"/"] = ""
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		default:
			got[rel] = "<" + d.Type().String() + ">"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testKey() []byte { return bytes.Repeat([]byte{7}, SnapshotKeySize) }

func TestSnapshotRoundTrip(t *testing.T) {
	big := make([]byte, 3*snapshotChunk+123) // several chunks, incompressible
	rand.Read(big)
	profile := t.TempDir()
	kept := map[string]string{
		"Local State":                                        `{"a":1}`,
		"Default/":                                           "",
		"Default/Cookies":                                    "sqlite cookies",
		"Default/Local Storage/":                             "",
		"Default/Local Storage/leveldb/":                     "",
		"Default/Local Storage/leveldb/000003.log":           "ls",
		"Default/IndexedDB/":                                 "",
		"Default/IndexedDB/http_x.indexeddb.leveldb/":        "",
		"Default/IndexedDB/http_x.indexeddb.leveldb/CURRENT": "MANIFEST-1",
		"Default/Service Worker/":                            "",
		"Default/Service Worker/ScriptCache/":                "",
		"Default/Service Worker/ScriptCache/index":           "sw",
		"Default/Preferences":                                "{}",
		"Default/big.bin":                                    string(big),
		"Default/empty":                                      "",
	}
	skipped := map[string]string{
		"Default/Cache/data_0":          "cache",
		"Default/Code Cache/js/x":       "code cache",
		"Default/GPUCache/x":            "gpu",
		"Default/Sessions/Tabs_1":       "tabs",
		"Default/Sessions_Encrypted/x":  "tabs",
		"GrShaderCache/x":               "shader",
		"component_crx_cache/x":         "crx",
		"DevToolsActivePort":            "9222",
		"BrowserMetrics-spare.pma":      "metrics",
		"Default/SingletonLockLikeFile": "x",
	}
	writeTree(t, profile, kept)
	writeTree(t, profile, skipped)
	// Chromium's singleton files are symbolic links; they must not be followed.
	if err := os.Symlink("/etc/passwd", filepath.Join(profile, "SingletonLock")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := writeSnapshot(&buf, testKey(), "ctx-1", profile); err != nil {
		t.Fatalf("writeSnapshot: %v", err)
	}
	if bytes.Contains(buf.Bytes(), []byte("sqlite cookies")) || bytes.Contains(buf.Bytes(), big[:64]) {
		t.Error("the snapshot contains plaintext")
	}
	out := t.TempDir()
	if err := readSnapshot(bytes.NewReader(buf.Bytes()), testKey(), "ctx-1", out); err != nil {
		t.Fatalf("readSnapshot: %v", err)
	}
	want := map[string]string{}
	for k, v := range kept {
		want[k] = v
	}
	if diff := cmp.Diff(want, readTree(t, out)); diff != "" {
		t.Errorf("restored profile (-want +got):\n%s", diff)
	}

	// What must fail: another key, another context, any change, any truncation.
	otherKey := bytes.Repeat([]byte{8}, SnapshotKeySize)
	data := buf.Bytes()
	header := len(snapshotMagic) + snapshotSalt
	chunk := snapshotChunk + 16
	cases := map[string]struct {
		data      []byte
		key       []byte
		contextID string
	}{
		"other key":             {data, otherKey, "ctx-1"},
		"other context":         {data, testKey(), "ctx-2"},
		"flipped bit":           {flip(data, len(data)/2), testKey(), "ctx-1"},
		"flipped salt":          {flip(data, len(snapshotMagic)+1), testKey(), "ctx-1"},
		"bad magic":             {flip(data, 0), testKey(), "ctx-1"},
		"header only":           {data[:header], testKey(), "ctx-1"},
		"cut at a chunk":        {data[:header+chunk], testKey(), "ctx-1"},
		"cut at two chunks":     {data[:header+2*chunk], testKey(), "ctx-1"},
		"cut inside a chunk":    {data[:header+chunk+100], testKey(), "ctx-1"},
		"cut in the last chunk": {data[:len(data)-1], testKey(), "ctx-1"},
		"extra byte":            {append(append([]byte(nil), data...), 0), testKey(), "ctx-1"},
		"chunks swapped":        {swapChunks(data, header, chunk), testKey(), "ctx-1"},
		"empty":                 {nil, testKey(), "ctx-1"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := readSnapshot(bytes.NewReader(c.data), c.key, c.contextID, t.TempDir())
			if err == nil {
				t.Fatal("readSnapshot succeeded")
			}
			if !errors.Is(err, errSnapshotCorrupt) && !strings.Contains(err.Error(), "unexpected EOF") {
				t.Errorf("readSnapshot = %v; want errSnapshotCorrupt", err)
			}
		})
	}
	if err := writeSnapshot(io.Discard, []byte("short"), "ctx-1", profile); err == nil {
		t.Error("writeSnapshot with a short key succeeded")
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func swapChunks(b []byte, header, chunk int) []byte {
	c := append([]byte(nil), b...)
	copy(c[header:header+chunk], b[header+chunk:header+2*chunk])
	copy(c[header+chunk:header+2*chunk], b[header:header+chunk])
	return c
}

// TestSealSizes checks the chunking at the sizes around a chunk boundary.
func TestSealSizes(t *testing.T) {
	for _, n := range []int{0, 1, snapshotChunk - 1, snapshotChunk, snapshotChunk + 1, 2 * snapshotChunk} {
		plain := make([]byte, n)
		rand.Read(plain)
		var buf bytes.Buffer
		sw, err := newSealWriter(&buf, testKey(), "c")
		if err != nil {
			t.Fatal(err)
		}
		// Odd write sizes exercise the buffering.
		for rest := plain; len(rest) > 0; {
			k := min(len(rest), 1000+len(rest)%7)
			sw.Write(rest[:k])
			rest = rest[k:]
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		or, err := newOpenReader(&buf, testKey(), "c")
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(or)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("size %d: round trip = %d bytes, %v; want %d bytes", n, len(got), err, n)
		}
	}
}

// FuzzOpenSnapshot feeds arbitrary bytes to the snapshot decryption: no panic, and
// nothing comes out unless it was sealed with the key.
func FuzzOpenSnapshot(f *testing.F) {
	var buf bytes.Buffer
	sw, _ := newSealWriter(&buf, testKey(), "c")
	sw.Write([]byte("hello"))
	sw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte(snapshotMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		or, err := newOpenReader(bytes.NewReader(data), testKey(), "c")
		if err != nil {
			return
		}
		// Workers run this function with a seed sealed under another random salt, so
		// the only plaintext that can come out is the seed's.
		got, err := io.ReadAll(or)
		if err == nil && string(got) != "hello" {
			t.Fatalf("forged snapshot decrypted to %q", got)
		}
	})
}

// FuzzUnpackProfile feeds arbitrary gzipped tars to the profile unpacker: no panic,
// and nothing is written outside its directory.
func FuzzUnpackProfile(f *testing.F) {
	profile := f.TempDir()
	writeTree(f, profile, map[string]string{"Default/Cookies": "c", "Local State": "{}"})
	var buf bytes.Buffer
	packProfile(&buf, profile)
	f.Add(buf.Bytes())
	f.Add(tarGz(f, &tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Size: 1}, "x"))
	f.Add(tarGz(f, &tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "p")
		os.Mkdir(dir, 0o700)
		unpackProfile(bytes.NewReader(data), dir) // errors are expected
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 {
			t.Fatalf("unpack wrote outside its directory: %v, %v", entries, err)
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !d.Type().IsRegular() {
				t.Errorf("unpack made a %v at %s", d.Type(), p)
			}
			return nil
		})
	})
}

func tarGz(t testing.TB, h *tar.Header, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
