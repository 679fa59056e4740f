package profiles

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	bb "github.com/browserd/browserd"
)

// zipEntry is one entry of a test zip. raw, when set, is stored as the compressed
// bytes with the declared size, without checks (CreateRaw).
type zipEntry struct {
	name string
	body string
	mode fs.FileMode // 0: a regular file (or a directory for names ending in /)
	raw  *zip.FileHeader
	data []byte
}

const testManifest = `{"manifest_version":3,"name":"marker","version":"1.0"}`

func buildZip(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		if e.raw != nil {
			w, err := zw.CreateRaw(e.raw)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(e.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.body == "" {
			h.Method = zip.Store // a flate writer per entry makes 10 000 entries slow
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflated(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	fw.Close()
	return buf.Bytes()
}

func TestCheckExtensionZip(t *testing.T) {
	manifest := zipEntry{name: "manifest.json", body: testManifest}
	many := []zipEntry{manifest}
	for i := range bb.MaxExtensionFiles {
		many = append(many, zipEntry{name: "f/" + strconv.Itoa(i)})
	}
	zeros := make([]byte, 1<<20)
	tests := []struct {
		name     string
		data     []byte
		wantCode bb.ErrorCode // "" for success
		wantMsg  string       // part of the message
	}{
		{name: "valid", data: buildZip(t, manifest, zipEntry{name: "js/"}, zipEntry{name: "js/cs.js", body: "1"})},
		{name: "stored entries and a BOM", data: func() []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Store})
			w.Write([]byte("\xef\xbb\xbf" + testManifest))
			zw.Close()
			return buf.Bytes()
		}()},
		{name: "not a zip", data: []byte("PK\x03\x04 but not really a zip file"), wantCode: bb.CodeInvalid, wantMsg: "not a valid zip"},
		{name: "empty", data: nil, wantCode: bb.CodeInvalid, wantMsg: "not a valid zip"},
		{name: "no manifest", data: buildZip(t, zipEntry{name: "cs.js", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "manifest.json at its root"},
		{name: "manifest in a folder", data: buildZip(t, zipEntry{name: "ext/manifest.json", body: testManifest}), wantCode: bb.CodeInvalid, wantMsg: "manifest.json at its root"},
		{name: "manifest is a directory", data: buildZip(t, zipEntry{name: "manifest.json/"}), wantCode: bb.CodeInvalid, wantMsg: "manifest.json at its root"},
		{name: "manifest not JSON", data: buildZip(t, zipEntry{name: "manifest.json", body: "{nope"}), wantCode: bb.CodeInvalid, wantMsg: "JSON object"},
		{name: "manifest an array", data: buildZip(t, zipEntry{name: "manifest.json", body: "[]"}), wantCode: bb.CodeInvalid, wantMsg: "JSON object"},
		{name: "manifest without version", data: buildZip(t, zipEntry{name: "manifest.json", body: `{"manifest_version":3,"name":"x"}`}), wantCode: bb.CodeInvalid, wantMsg: "version"},
		{name: "manifest_version a string", data: buildZip(t, zipEntry{name: "manifest.json", body: `{"manifest_version":"3","name":"x","version":"1"}`}), wantCode: bb.CodeInvalid, wantMsg: "manifest_version"},
		{name: "zip slip", data: buildZip(t, manifest, zipEntry{name: "../../etc/cron.d/x", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "zip slip inside", data: buildZip(t, manifest, zipEntry{name: "a/../../x", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "absolute path", data: buildZip(t, manifest, zipEntry{name: "/etc/passwd", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "backslash path", data: buildZip(t, manifest, zipEntry{name: `..\..\x`, body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "drive letter", data: buildZip(t, manifest, zipEntry{name: `C:/x`, body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "dot segment", data: buildZip(t, manifest, zipEntry{name: "./x", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "empty segment", data: buildZip(t, manifest, zipEntry{name: "a//x", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "NUL in name", data: buildZip(t, manifest, zipEntry{name: "a\x00b", body: "1"}), wantCode: bb.CodeInvalid, wantMsg: "unsafe path"},
		{name: "symlink", data: buildZip(t, manifest, zipEntry{name: "link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), wantCode: bb.CodeInvalid, wantMsg: "symbolic link"},
		{name: "named pipe", data: buildZip(t, manifest, zipEntry{name: "fifo", mode: fs.ModeNamedPipe | 0o644}), wantCode: bb.CodeInvalid, wantMsg: "not a regular file"},
		{name: "duplicate entry", data: buildZip(t, manifest, zipEntry{name: "a.js", body: "1"}, zipEntry{name: "a.js", body: "2"}), wantCode: bb.CodeInvalid, wantMsg: "twice"},
		{name: "file used as a directory", data: buildZip(t, manifest, zipEntry{name: "a", body: "1"}, zipEntry{name: "a/b", body: "2"}), wantCode: bb.CodeInvalid, wantMsg: "inside the file"},
		{name: "too many entries", data: buildZip(t, many...), wantCode: bb.CodeInvalid, wantMsg: "entries"},
		{name: "declared bomb", data: buildZip(t, manifest, zipEntry{
			raw: &zip.FileHeader{Name: "bomb.bin", Method: zip.Deflate, UncompressedSize64: bb.MaxExtensionUnpacked + 1,
				CompressedSize64: uint64(len(deflated(t, zeros))), CRC32: crc32.ChecksumIEEE(zeros)},
			data: deflated(t, zeros),
		}), wantCode: bb.CodeTooLarge, wantMsg: "unpack to more than"},
		{name: "bomb lying about its size", data: buildZip(t, manifest, zipEntry{
			raw: &zip.FileHeader{Name: "bomb.bin", Method: zip.Deflate, UncompressedSize64: 10,
				CompressedSize64: uint64(len(deflated(t, zeros))), CRC32: crc32.ChecksumIEEE(zeros)},
			data: deflated(t, zeros),
		}), wantCode: bb.CodeInvalid, wantMsg: "corrupt"},
		{name: "bad checksum", data: buildZip(t, manifest, zipEntry{
			raw:  &zip.FileHeader{Name: "a.js", Method: zip.Store, UncompressedSize64: 3, CompressedSize64: 3, CRC32: 1},
			data: []byte("abc"),
		}), wantCode: bb.CodeInvalid, wantMsg: "corrupt"},
		{name: "unsupported method", data: buildZip(t, manifest, zipEntry{
			raw:  &zip.FileHeader{Name: "a.js", Method: 99, UncompressedSize64: 3, CompressedSize64: 3},
			data: []byte("abc"),
		}), wantCode: bb.CodeInvalid, wantMsg: "compression method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := CheckExtensionZip(bytes.NewReader(tt.data), int64(len(tt.data)))
			if got := bb.CodeOf(err); got != tt.wantCode {
				t.Fatalf("CheckExtensionZip = %v (code %q); want code %q", err, got, tt.wantCode)
			}
			if err != nil && !strings.Contains(bb.MessageOf(err), tt.wantMsg) {
				t.Errorf("message %q; want it to contain %q", bb.MessageOf(err), tt.wantMsg)
			}
			if err == nil {
				if diff := cmp.Diff(bb.ExtensionManifest{ManifestVersion: 3, Name: "marker", Version: "1.0"}, m); diff != "" {
					t.Errorf("manifest (-want +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		_, err := CheckExtensionZip(bytes.NewReader(nil), bb.MaxExtensionSize+1)
		if bb.CodeOf(err) != bb.CodeTooLarge {
			t.Errorf("CheckExtensionZip(size %d) = %v; want code %q", bb.MaxExtensionSize+1, err, bb.CodeTooLarge)
		}
	})
}

func TestUnpackExtension(t *testing.T) {
	data := buildZip(t, zipEntry{name: "manifest.json", body: testManifest}, zipEntry{name: "js/"},
		zipEntry{name: "js/deep/cs.js", body: "document.documentElement.dataset.x = 1"}, zipEntry{name: "empty/"})
	dir := t.TempDir()
	if err := unpackExtension(bytes.NewReader(data), int64(len(data)), dir); err != nil {
		t.Fatalf("unpackExtension: %v", err)
	}
	got := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			got[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got[rel] = string(b)
		return nil
	})
	want := map[string]string{"./": "", "manifest.json": testManifest, "js/": "", "js/deep/": "",
		"js/deep/cs.js": "document.documentElement.dataset.x = 1", "empty/": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unpacked files (-want +got):\n%s", diff)
	}
	// A zip-slip zip is refused before anything is written.
	bad := buildZip(t, zipEntry{name: "manifest.json", body: testManifest}, zipEntry{name: "../escape", body: "x"})
	out := filepath.Join(t.TempDir(), "out")
	os.Mkdir(out, 0o700)
	if err := unpackExtension(bytes.NewReader(bad), int64(len(bad)), out); bb.CodeOf(err) != bb.CodeInvalid {
		t.Errorf("unpackExtension(zip slip) = %v; want code %q", err, bb.CodeInvalid)
	}
	if _, err := os.Stat(filepath.Join(out, "..", "escape")); err == nil {
		t.Error("zip slip wrote outside the directory")
	}
}

// FuzzCheckExtensionZip checks that any upload is either refused with bb.CodeInvalid or
// bb.CodeTooLarge, or accepted and then unpacks inside its directory only.
func FuzzCheckExtensionZip(f *testing.F) {
	f.Add(buildZip(f, zipEntry{name: "manifest.json", body: testManifest}, zipEntry{name: "a/b.js", body: "x"}))
	f.Add(buildZip(f, zipEntry{name: "manifest.json", body: testManifest}, zipEntry{name: "../x", body: "x"}))
	f.Add(buildZip(f, zipEntry{name: "manifest.json", body: testManifest}, zipEntry{name: "l", body: "/", mode: fs.ModeSymlink | 0o777}))
	f.Add(buildZip(f, zipEntry{name: "x.js", body: "x"}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := CheckExtensionZip(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if c := bb.CodeOf(err); c != bb.CodeInvalid && c != bb.CodeTooLarge {
				t.Fatalf("CheckExtensionZip = %v (code %q); want code invalid or too_large", err, c)
			}
			return
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "ext")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unpackExtension(bytes.NewReader(data), int64(len(data)), dir); err != nil {
			t.Fatalf("unpackExtension of a checked zip: %v", err)
		}
		entries, err := os.ReadDir(parent)
		if err != nil || len(entries) != 1 {
			t.Fatalf("unpack wrote outside its directory: %v, %v", entries, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("no manifest.json after unpacking: %v", err)
		}
	})
}
