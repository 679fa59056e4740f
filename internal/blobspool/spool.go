package blobspool

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	bb "github.com/browserd/browserd"
)

// Config configures a Spool. Zero values take the defaults in brackets.
type Config struct {
	// Dir is the spool directory, on a local disk. Required.
	Dir string
	// Remote is the store the spool feeds. Required.
	Remote bb.BlobStore
	// Logger gets upload failures and recoveries [discard].
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the wait between retries of a failed upload
	// [100ms, 30s]; the wait doubles from one to the other.
	MinBackoff, MaxBackoff time.Duration
}

// Spool is a bb.BlobStore that writes locally first and uploads in the background. It
// is safe for concurrent use. Create it with New; Close it when done.
type Spool struct {
	cfg    Config
	log    *slog.Logger
	remote bb.BlobStore
	ctx    context.Context // the uploader's; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // a new entry, buffered 1

	mu      sync.Mutex
	entries []*entry // the journal, oldest first
	next    uint64   // seq of the next entry
	lastErr error    // the uploader's last failure, nil once an upload succeeded
	drained chan struct{}
}

// entry is one journal entry: a file <seq>.put (header, then the blob's bytes) or
// <seq>.del (header only).
type entry struct {
	seq  uint64
	del  bool
	key  string // a put's key, a delete's prefix
	path string
	size int64
	mod  time.Time
	hdr  int64 // header length
}

var _ bb.BlobStore = (*Spool)(nil)

const magic = "BDSP"

// header returns an entry file's header: the magic, the key's length (2 bytes), the key.
func header(key string) []byte {
	h := append([]byte(magic), 0, 0)
	binary.BigEndian.PutUint16(h[4:], uint16(len(key)))
	return append(h, key...)
}

// New opens the spool in cfg.Dir, loads the entries an earlier process left, and starts
// the uploader on them.
func New(cfg Config) (*Spool, error) {
	if cfg.Dir == "" || cfg.Remote == nil {
		return nil, errors.New("blobspool: a directory and a remote store are required")
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.RemoveAll(filepath.Join(cfg.Dir, "tmp")); err != nil {
		return nil, fmt.Errorf("blobspool: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blobspool: %w", err)
	}
	s := &Spool{cfg: cfg, log: log, remote: cfg.Remote, wake: make(chan struct{}, 1)}
	if err := s.load(); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(s.upload)
	return s, nil
}

// load reads the journal from the directory.
func (s *Spool) load() error {
	des, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("blobspool: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		base, ext := strings.TrimSuffix(name, filepath.Ext(name)), filepath.Ext(name)
		seq, err := strconv.ParseUint(base, 10, 64)
		if err != nil || (ext != ".put" && ext != ".del") || !de.Type().IsRegular() {
			continue // tmp/, *.corrupt
		}
		e, err := readEntry(filepath.Join(s.cfg.Dir, name), seq, ext == ".del")
		if err != nil {
			s.log.Error("blob spool entry unreadable; kept aside as .corrupt", "file", name, "err", err)
			_ = os.Rename(filepath.Join(s.cfg.Dir, name), filepath.Join(s.cfg.Dir, name+".corrupt"))
			continue
		}
		s.entries = append(s.entries, e)
		s.next = max(s.next, seq+1)
	}
	slices.SortFunc(s.entries, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	if n := len(s.entries); n > 0 {
		s.log.Info("blob spool has writes to upload from an earlier run", "entries", n)
	}
	return nil
}

func readEntry(path string, seq uint64, del bool) (*entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h := make([]byte, 6)
	if _, err := io.ReadFull(f, h); err != nil || string(h[:4]) != magic {
		return nil, errors.New("bad header")
	}
	key := make([]byte, binary.BigEndian.Uint16(h[4:]))
	if _, err := io.ReadFull(f, key); err != nil {
		return nil, errors.New("bad header")
	}
	e := &entry{seq: seq, del: del, key: string(key), path: path, mod: fi.ModTime(), hdr: int64(6 + len(key))}
	e.size = fi.Size() - e.hdr
	if (del && !validPrefix(e.key)) || (!del && !bb.ValidBlobKey(e.key)) {
		return nil, fmt.Errorf("bad key %q", e.key)
	}
	return e, nil
}

func validPrefix(p string) bool {
	dir, ok := strings.CutSuffix(p, "/")
	return ok && bb.ValidBlobKey(dir)
}

// Put writes r to a spool file, syncs it and adds it to the journal; the uploader
// stores it remotely later. A reader's error is returned wrapped (errors.Is finds it).
func (s *Spool) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if !bb.ValidBlobKey(key) {
		return 0, bb.Errorf(bb.CodeInvalid, "invalid blob key %q", key)
	}
	f, err := os.CreateTemp(filepath.Join(s.cfg.Dir, "tmp"), "put-*")
	if err != nil {
		return 0, fmt.Errorf("spool put %s: %w", key, err)
	}
	defer os.Remove(f.Name()) // after the rename there is nothing left to remove
	_, err = f.Write(header(key))
	var n int64
	if err == nil {
		n, err = io.Copy(f, ctxReader{ctx, r})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("spool put %s: %w", key, err)
	}
	if err := s.add(f.Name(), &entry{key: key, size: n, hdr: int64(len(header(key)))}); err != nil {
		return 0, fmt.Errorf("spool put %s: %w", key, err)
	}
	return n, nil
}

// DeletePrefix adds a delete to the journal: the blobs under prefix are gone for Open
// and List at once, and from the remote once the uploader reaches it.
func (s *Spool) DeletePrefix(ctx context.Context, prefix string) error {
	if !validPrefix(prefix) {
		return bb.Errorf(bb.CodeInvalid, "blob prefix %q must be a directory ending in /", prefix)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.cfg.Dir, "tmp"), "del-*")
	if err != nil {
		return fmt.Errorf("spool delete %s: %w", prefix, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(header(prefix))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spool delete %s: %w", prefix, err)
	}
	return s.add(f.Name(), &entry{del: true, key: prefix, hdr: int64(len(header(prefix)))})
}

// add moves a written temporary file into the journal as its next entry.
func (s *Spool) add(tmp string, e *entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.seq = s.next
	ext := ".put"
	if e.del {
		ext = ".del"
	}
	e.path = filepath.Join(s.cfg.Dir, fmt.Sprintf("%020d%s", e.seq, ext))
	if err := os.Rename(tmp, e.path); err != nil {
		return err
	}
	if d, err := os.Open(s.cfg.Dir); err == nil { // the rename reaches the disk
		_ = d.Sync()
		d.Close()
	}
	e.mod = time.Now()
	s.next++
	s.entries = append(s.entries, e)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open returns the newest spooled bytes of key, or the remote's.
func (s *Spool) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if !bb.ValidBlobKey(key) {
		return nil, bb.Errorf(bb.CodeInvalid, "invalid blob key %q", key)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	for i := len(s.entries) - 1; i >= 0; i-- {
		e := s.entries[i]
		if e.del && strings.HasPrefix(key, e.key) {
			s.mu.Unlock()
			return nil, bb.Errorf(bb.CodeNotFound, "blob %q not found", key)
		}
		if !e.del && e.key == key {
			f, err := os.Open(e.path) // under the lock: the uploader removes it only under it
			s.mu.Unlock()
			if err != nil {
				return nil, fmt.Errorf("spool open %s: %w", key, err)
			}
			return struct {
				io.Reader
				io.Closer
			}{io.NewSectionReader(f, e.hdr, e.size), f}, nil
		}
	}
	s.mu.Unlock()
	return s.remote.Open(ctx, key)
}

// List lists the remote's blobs with the journal applied over them. The journal is
// read first: an entry uploaded meanwhile is then in both, which gives the same list.
func (s *Spool) List(ctx context.Context, prefix string) ([]bb.BlobInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	entries := slices.Clone(s.entries)
	s.mu.Unlock()
	remote, err := s.remote.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]bb.BlobInfo, len(remote))
	for _, b := range remote {
		byKey[b.Key] = b
	}
	for _, e := range entries {
		switch {
		case e.del:
			for k := range byKey {
				if strings.HasPrefix(k, e.key) {
					delete(byKey, k)
				}
			}
		case strings.HasPrefix(e.key, prefix):
			byKey[e.key] = bb.BlobInfo{Key: e.key, Size: e.size, ModTime: e.mod}
		}
	}
	out := make([]bb.BlobInfo, 0, len(byKey))
	for _, b := range byKey {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b bb.BlobInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Pending returns how many writes wait in the spool, and the uploader's last error
// (nil when its last attempt succeeded).
func (s *Spool) Pending() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.lastErr
}

// Flush waits until the spool is empty (everything uploaded) or ctx is done.
func (s *Spool) Flush(ctx context.Context) error {
	for {
		s.mu.Lock()
		if len(s.entries) == 0 {
			s.mu.Unlock()
			return nil
		}
		if s.drained == nil {
			s.drained = make(chan struct{})
		}
		ch := s.drained
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			n, last := s.Pending()
			return fmt.Errorf("blob spool: %d writes not uploaded yet (last error: %v): %w", n, last, ctx.Err())
		}
	}
}

// Close stops the uploader. What it has not uploaded stays in the spool directory for
// the next New.
func (s *Spool) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}
