package blobspool

import (
	"errors"
	"os"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// upload replays the journal to the remote, oldest entry first, until Close. A failed
// entry is retried (with backoff) before any later one, so the remote sees the writes
// and deletes in the order they were made.
func (s *Spool) upload() {
	backoff := time.Duration(0)
	failingSince := time.Time{}
	for {
		e := s.head()
		if e == nil {
			select {
			case <-s.ctx.Done():
				return
			case <-s.wake:
				continue
			}
		}
		var err error
		if !s.superseded(e) {
			err = s.apply(e)
		}
		if s.ctx.Err() != nil {
			return // cancelled in flight: the entry stays for the next start
		}
		if c := bb.CodeOf(err); c == bb.CodeInvalid || c == bb.CodeTooLarge {
			// The remote refuses this entry for good (a key too long with its prefix):
			// retrying would hold up every later write. Kept aside, said loudly.
			s.log.Error("blob refused by the remote store; its spool file is kept aside as .refused", "key", e.key, "file", e.path, "err", err)
			if rerr := os.Rename(e.path, e.path+".refused"); rerr != nil {
				s.log.Error("keep refused spool file", "file", e.path, "err", rerr)
			}
			s.pop(e)
			continue
		}
		if err != nil {
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			backoff = min(max(2*backoff, s.cfg.MinBackoff), s.cfg.MaxBackoff)
			if failingSince.IsZero() {
				failingSince = time.Now()
				s.log.Warn("blob upload failed; writes wait in the local spool and are retried", "key", e.key, "err", err)
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		if !failingSince.IsZero() {
			s.log.Info("blob uploads recovered", "after", time.Since(failingSince).Round(time.Second).String())
			failingSince = time.Time{}
		}
		backoff = 0
		s.pop(e)
	}
}

func (s *Spool) head() *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return nil
	}
	return s.entries[0]
}

// superseded reports whether a later entry makes the put e moot: a put of the same key
// or a delete of a prefix of it.
func (s *Spool) superseded(e *entry) bool {
	if e.del {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.entries[1:] {
		if (l.del && strings.HasPrefix(e.key, l.key)) || (!l.del && l.key == e.key) {
			return true
		}
	}
	return false
}

// apply performs e on the remote.
func (s *Spool) apply(e *entry) error {
	if e.del {
		return s.remote.DeletePrefix(s.ctx, e.key)
	}
	f, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(e.hdr, 0); err != nil {
		return err
	}
	n, err := s.remote.Put(s.ctx, e.key, f)
	if err == nil && n != e.size {
		return errors.New("blob spool: the uploaded size differs from the spooled one")
	}
	return err
}

// pop removes the head entry e and its file.
func (s *Spool) pop(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(e.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("remove uploaded spool file", "file", e.path, "err", err)
	}
	s.entries = s.entries[1:]
	s.lastErr = nil
	if len(s.entries) == 0 && s.drained != nil {
		close(s.drained)
		s.drained = nil
	}
}
