package profiles

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A context snapshot is a Chromium profile packed as a gzipped tar and encrypted with
// AES-256-GCM in chunks (the STREAM construction, as in age and Tink):
//
//	"BDCTXSN1" | salt (32 bytes) | chunk 0 | chunk 1 | … | last chunk
//
// Each chunk seals up to snapshotChunk bytes of plaintext with a key derived from the
// server's snapshot key and the salt (HKDF-SHA256), the nonce
// (11-byte big-endian chunk counter | 1 on the last chunk, else 0) and the context id
// as additional data. So a snapshot can't be read without the server key, moved to
// another context, reordered, or truncated at a chunk boundary without the reader
// noticing.
const (
	snapshotMagic = "BDCTXSN1"
	snapshotSalt  = 32
	snapshotChunk = 64 << 10
	// SnapshotKeySize is the size of the server's snapshot key.
	SnapshotKeySize = 32
	// maxSnapshotUnpacked bounds what one snapshot unpacks to.
	maxSnapshotUnpacked = 16 << 30
)

var errSnapshotCorrupt = errors.New("context snapshot is corrupt, truncated, or sealed with another key")

// snapshotAEAD derives the chunk cipher of one snapshot.
func snapshotAEAD(key, salt []byte) (cipher.AEAD, error) {
	if len(key) != SnapshotKeySize {
		return nil, fmt.Errorf("snapshot key must be %d bytes, got %d", SnapshotKeySize, len(key))
	}
	k, err := hkdf.Key(sha256.New, key, salt, "browserd context snapshot v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(n uint64, last bool) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[3:11], n)
	if last {
		nonce[11] = 1
	}
	return nonce
}

// sealWriter encrypts what is written to it in chunks; Close seals the last chunk.
type sealWriter struct {
	w    io.Writer
	aead cipher.AEAD
	aad  []byte
	buf  []byte // plaintext not sealed yet, at most snapshotChunk bytes
	out  []byte
	n    uint64
}

// newSealWriter writes the header to w and returns a writer for the plaintext.
func newSealWriter(w io.Writer, key []byte, contextID string) (*sealWriter, error) {
	salt := make([]byte, snapshotSalt)
	_, _ = rand.Read(salt) // crypto/rand.Read never returns an error
	aead, err := snapshotAEAD(key, salt)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, snapshotMagic); err != nil {
		return nil, err
	}
	if _, err := w.Write(salt); err != nil {
		return nil, err
	}
	return &sealWriter{w: w, aead: aead, aad: []byte(contextID), buf: make([]byte, 0, snapshotChunk)}, nil
}

func (s *sealWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if len(s.buf) == snapshotChunk { // full, and more follows: not the last chunk
			if err := s.seal(false); err != nil {
				return written, err
			}
		}
		k := copy(s.buf[len(s.buf):snapshotChunk], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		written += k
	}
	return written, nil
}

func (s *sealWriter) seal(last bool) error {
	s.out = s.aead.Seal(s.out[:0], chunkNonce(s.n, last), s.buf, s.aad)
	s.n++
	s.buf = s.buf[:0]
	_, err := s.w.Write(s.out)
	return err
}

// Close seals the last chunk (possibly empty). It does not close the underlying writer.
func (s *sealWriter) Close() error { return s.seal(true) }

// openReader decrypts a stream written by sealWriter.
type openReader struct {
	r     *bufio.Reader
	aead  cipher.AEAD
	aad   []byte
	ct    []byte
	plain []byte // decrypted, not read yet
	buf   []byte
	n     uint64
	done  bool
	err   error
}

// newOpenReader reads the header from r and returns a reader of the plaintext.
func newOpenReader(r io.Reader, key []byte, contextID string) (*openReader, error) {
	br := bufio.NewReaderSize(r, snapshotChunk+64)
	head := make([]byte, len(snapshotMagic)+snapshotSalt)
	if _, err := io.ReadFull(br, head); err != nil {
		return nil, fmt.Errorf("read snapshot header: %w", errSnapshotCorrupt)
	}
	if string(head[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("not a browserd context snapshot: %w", errSnapshotCorrupt)
	}
	aead, err := snapshotAEAD(key, head[len(snapshotMagic):])
	if err != nil {
		return nil, err
	}
	return &openReader{r: br, aead: aead, aad: []byte(contextID), ct: make([]byte, snapshotChunk+aead.Overhead())}, nil
}

func (o *openReader) Read(p []byte) (int, error) {
	for len(o.plain) == 0 {
		if o.err != nil {
			return 0, o.err
		}
		if o.done {
			return 0, io.EOF
		}
		o.next()
	}
	n := copy(p, o.plain)
	o.plain = o.plain[n:]
	return n, nil
}

// next decrypts the next chunk. A full chunk is the last one when nothing follows it.
func (o *openReader) next() {
	n, err := io.ReadFull(o.r, o.ct)
	last := false
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		last = true
	case err != nil:
		o.err = fmt.Errorf("read snapshot: %w", err)
		return
	default:
		if _, perr := o.r.Peek(1); errors.Is(perr, io.EOF) {
			last = true
		} else if perr != nil {
			o.err = fmt.Errorf("read snapshot: %w", perr)
			return
		}
	}
	plain, err := o.aead.Open(o.buf[:0], chunkNonce(o.n, last), o.ct[:n], o.aad)
	if err != nil {
		o.err = fmt.Errorf("chunk %d: %w", o.n, errSnapshotCorrupt)
		return
	}
	o.buf = plain
	o.plain = plain
	o.n++
	o.done = last
}

// snapshotSkipped reports whether a profile entry stays out of snapshots: caches, which
// Chromium rebuilds; the open tabs (Sessions), so that a session starts with one blank
// page instead of the last session's tabs; and the files of the running instance
// (singleton links, the DevTools port). depth 0 is the profile root, 1 inside it.
func snapshotSkipped(name string, depth int, dir bool) bool {
	if !dir {
		return strings.HasPrefix(name, "Singleton") || name == "DevToolsActivePort" ||
			strings.HasSuffix(name, ".pma") || name == "lockfile"
	}
	if depth > 1 {
		return false
	}
	switch name {
	case "Cache", "Code Cache", "GPUCache", "DawnCache", "DawnGraphiteCache", "DawnWebGPUCache",
		"GrShaderCache", "GraphiteDawnCache", "ShaderCache", "GPUPersistentCache",
		"component_crx_cache", "extensions_crx_cache", "BrowserMetrics", "Crash Reports",
		"Sessions", "Sessions_Encrypted", "Crashpad":
		return true
	}
	return false
}

// packProfile writes dir as a gzipped tar: directories and regular files, without
// what snapshotSkipped leaves out. Symbolic links and other special files are skipped.
func packProfile(w io.Writer, dir string) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		depth := strings.Count(name, "/")
		if snapshotSkipped(d.Name(), depth, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o700, Format: tar.FormatPAX})
		case d.Type().IsRegular():
			return addFile(tw, path, name)
		}
		return nil // symlinks (SingletonLock, …), sockets
	})
	if err != nil {
		return fmt.Errorf("pack profile: %w", err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func addFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: fi.Size(),
		ModTime: fi.ModTime(), Format: tar.FormatPAX}); err != nil {
		return err
	}
	// The browser has exited, so the file can't grow; CopyN keeps the header honest
	// if it shrank.
	_, err = io.CopyN(tw, f, fi.Size())
	return err
}

// unpackProfile extracts a gzipped tar written by packProfile into dir, which must
// exist and be empty. Only directories and regular files with clean relative names
// are accepted, at most maxSnapshotUnpacked bytes in all.
func unpackProfile(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("unpack profile: %w", err)
	}
	tr := tar.NewReader(zr)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("unpack profile: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !cleanRelativePath(name) {
			return fmt.Errorf("unpack profile: unsafe name %q", safeName(h.Name))
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if total += h.Size; h.Size < 0 || total > maxSnapshotUnpacked {
				return fmt.Errorf("unpack profile: more than %d bytes", int64(maxSnapshotUnpacked))
			}
			if err := extractFile(tr, target); err != nil {
				return fmt.Errorf("unpack profile: %s: %w", safeName(name), err)
			}
		default:
			return fmt.Errorf("unpack profile: %q has unsupported type %q", safeName(h.Name), h.Typeflag)
		}
	}
	// Reading to the end of the gzip stream checks its CRC and length.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("unpack profile: %w", err)
	}
	return nil
}

func extractFile(r io.Reader, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close() // the copy error is the one to report
		return err
	}
	return f.Close()
}

// writeSnapshot packs and encrypts the profile in dir to w.
func writeSnapshot(w io.Writer, key []byte, contextID, dir string) error {
	sw, err := newSealWriter(w, key, contextID)
	if err != nil {
		return err
	}
	if err := packProfile(sw, dir); err != nil {
		return err
	}
	return sw.Close()
}

// readSnapshot decrypts and unpacks a snapshot written by writeSnapshot into dir.
func readSnapshot(r io.Reader, key []byte, contextID, dir string) error {
	or, err := newOpenReader(r, key, contextID)
	if err != nil {
		return err
	}
	if err := unpackProfile(or, dir); err != nil {
		return err
	}
	// Nothing may follow the tar's gzip stream inside the sealed data, and the last
	// chunk must have been read: a snapshot cut short at a chunk boundary fails here.
	if n, err := io.Copy(io.Discard, or); err != nil {
		return err
	} else if n > 0 {
		return fmt.Errorf("%d bytes after the profile: %w", n, errSnapshotCorrupt)
	}
	return nil
}
