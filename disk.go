package browserd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"
)

// Disk limits (security-review F8). Every session, context and extension lives on the
// disk that holds the store: one tenant filling it would stop every session's end from
// being recorded. A watcher ends sessions whose files grow past a quota, projects have a
// quota for what they keep (extensions, context snapshots: internal/profiles), and below
// a free-space floor the node takes no new session and reports itself not ready.

// DiskConfig sets the disk limits (ManagerConfig.Disk). Zero values take the defaults
// in brackets; a negative size disables its limit.
type DiskConfig struct {
	// SessionMax ends a session (ERROR) whose files (the browser's directory: profile,
	// cache, temporary files; its downloads and uploads) pass this many bytes [2 GiB].
	SessionMax int64
	// CheckInterval is how often every live session's files are measured [5s].
	CheckInterval time.Duration
	// MinFree is the free-space floor of the data disk [1 GiB, or 5% of the disk when
	// that is less, so that small disks work]: below it creates answer 503 and
	// DiskReady reports not ready.
	MinFree int64
	// Free returns the free and total bytes of the data disk; nil turns the floor off.
	Free func() (free, total int64, err error)
	// CacheSize is Chromium's HTTP cache limit, --disk-cache-size [64 MiB].
	CacheSize int64
}

// Defaults of DiskConfig, and of the project quota that internal/profiles keeps (what a
// project's extensions and context snapshots may take together).
const (
	DefaultSessionDiskMax = 2 << 30
	DefaultProjectDiskMax = 10 << 30
	DefaultMinFreeDisk    = 1 << 30
	DefaultDiskCacheSize  = 64 << 20
)

func (c DiskConfig) withDefaults() DiskConfig {
	if c.SessionMax == 0 {
		c.SessionMax = DefaultSessionDiskMax
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = 5 * time.Second
	}
	if c.CacheSize <= 0 {
		c.CacheSize = DefaultDiskCacheSize
	}
	return c
}

// ErrLowDisk is the cause of a create refused because the data disk is below its
// free-space floor.
var ErrLowDisk = errors.New("browserd: data disk low on free space")

// launchArgs are the flags every browser of the Manager gets, warm ones included.
func (m *Manager) launchArgs() []string {
	return []string{"--disk-cache-size=" + strconv.FormatInt(m.cfg.Disk.CacheSize, 10)}
}

// DiskReady reports whether the data disk is above its free-space floor, and its free
// space (for /readyz).
func (m *Manager) DiskReady() (ok bool, detail string) {
	err := m.checkFreeDisk()
	if err == nil {
		if free, _, ferr := m.freeDisk(); ferr == nil && m.cfg.Disk.Free != nil {
			return true, fmt.Sprintf("%d MiB free", free>>20)
		}
		return true, ""
	}
	if errors.Is(err, ErrLowDisk) {
		return false, MessageOf(err)
	}
	return false, err.Error()
}

func (m *Manager) freeDisk() (free, total int64, err error) {
	if m.cfg.Disk.Free == nil {
		return 0, 0, nil
	}
	return m.cfg.Disk.Free()
}

// minFree is the floor for a disk of total bytes: MinFree, or by default 1 GiB or 5% of
// the disk, whichever is less (small disks, tests).
func (c DiskConfig) minFree(total int64) int64 {
	switch {
	case c.MinFree < 0:
		return 0
	case c.MinFree == 0:
		return min(DefaultMinFreeDisk, total/20)
	}
	return c.MinFree
}

// checkFreeDisk refuses new work below the free-space floor: CodeUnavailable, retry.
func (m *Manager) checkFreeDisk() error {
	if m.cfg.Disk.Free == nil || m.cfg.Disk.MinFree < 0 {
		return nil
	}
	free, total, err := m.cfg.Disk.Free()
	if err != nil {
		return fmt.Errorf("measure free disk space: %w", err)
	}
	if floor := m.cfg.Disk.minFree(total); free < floor {
		return &Error{Code: CodeUnavailable, Retry: true, Err: ErrLowDisk, Message: fmt.Sprintf(
			"This browserd node is low on disk space (%d MiB free, %d MiB needed). Try again later.", free>>20, floor>>20)}
	}
	return nil
}

// SessionFiles is implemented by a PartRun that keeps files of its session outside the
// browser's directory (artifacts: downloads and uploads, spooled and in blobs): the
// session's disk quota counts them.
type SessionFiles interface {
	// SessionDirs returns the local directories of the live session's files.
	SessionDirs() []string
	// SessionBlobBytes returns the bytes of the session's blobs.
	SessionBlobBytes(ctx context.Context) (int64, error)
}

// sessionBytes measures what a live session keeps on disk, stopping early (with a
// total over limit) once it passes limit.
func (m *Manager) sessionBytes(ctx context.Context, ls *liveSession, limit int64) (int64, error) {
	dirs := []string{ls.browser.Dir()}
	var filers []SessionFiles
	for _, r := range ls.runs {
		if f, ok := r.(SessionFiles); ok {
			filers = append(filers, f)
			dirs = append(dirs, f.SessionDirs()...)
		}
	}
	var used int64
	var errs []error
	for _, dir := range dirs {
		n, err := DiskUsage(dir, limit-used)
		used += n
		if errors.Is(err, errOverQuota) {
			return used, nil
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range filers {
		n, err := f.SessionBlobBytes(ctx)
		used += n
		errs = append(errs, err)
	}
	return used, errors.Join(errs...)
}

// startDiskWatch starts the session quota watcher, once; Reconcile calls it.
func (m *Manager) startDiskWatch() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.Disk.SessionMax < 0 || m.diskStarted || m.closed {
		return
	}
	m.diskStarted = true
	m.wg.Go(m.diskWatchLoop) // returns when the Manager closes
}

func (m *Manager) diskWatchLoop() {
	t := time.NewTicker(m.cfg.Disk.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.checkSessionDisks()
		case <-m.closing:
			return
		}
	}
}

// checkSessionDisks measures every live session's files and ends those over quota.
func (m *Manager) checkSessionDisks() {
	m.mu.Lock()
	live := make([]*liveSession, 0, len(m.live))
	for _, ls := range m.live {
		if !ls.ending {
			live = append(live, ls)
		}
	}
	m.mu.Unlock()
	limit := m.cfg.Disk.SessionMax
	for _, ls := range live {
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.Disk.CheckInterval)
		used, err := m.sessionBytes(ctx, ls, limit)
		cancel()
		if errors.Is(err, fs.ErrPermission) {
			// Chromium makes no unreadable directories; files hidden in one would
			// escape the quota. Fail closed.
			m.log.Warn("session files can't be measured", "session_id", ls.id, "err", err)
			m.finishAsync(ls, StatusError, "disk quota: the session's files can't be measured (an unreadable directory)")
			continue
		} else if err != nil {
			m.log.Warn("measure session files", "session_id", ls.id, "err", err)
		}
		if used > limit {
			m.log.Warn("session over its disk quota", "session_id", ls.id, "bytes", used, "limit", limit)
			m.finishAsync(ls, StatusError, "disk quota exceeded: the session's files passed "+sizeText(limit))
		}
	}
}

var errOverQuota = errors.New("over quota")

// diskBlock is what one file or directory counts at least, and the unit sizes are
// rounded up to: a file system block. Empty files still take an inode and a block.
const diskBlock = 4096

// DiskUsage returns the bytes that the tree at root takes, counting every entry
// (directories, files, symbolic links, others) as its size rounded up to a 4 KiB block.
// It never follows a symbolic link, root included: a link to a large file counts as a
// link (the browser may plant links to anything). It stops early, with a total over
// limit and an error, once the total passes limit (unless limit < 0). A missing root is
// 0 and entries that vanish during the walk are skipped; a directory that can't be read
// (the browser may chmod its own) is measured around and reported as an error wrapping
// fs.ErrPermission, so that the caller can fail closed.
func DiskUsage(root string, limit int64) (int64, error) {
	var total int64
	var denied error
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if path == root {
				return err
			}
			if errors.Is(err, fs.ErrPermission) && denied == nil {
				denied = fmt.Errorf("measure %s: %w", path, err)
			}
			return nil // vanished or unreadable: skip (a directory's own size was counted)
		}
		info, err := d.Info() // lstat: WalkDir's entries never follow links
		if err != nil {
			return nil
		}
		total += max(diskBlock, (info.Size()+diskBlock-1)/diskBlock*diskBlock)
		if limit >= 0 && total > limit {
			return errOverQuota
		}
		return nil
	})
	if errors.Is(err, errOverQuota) {
		return total, errOverQuota
	}
	if err == nil {
		err = denied
	}
	return total, err
}

// CheckUpload refuses, before anything is written, an upload of up to size bytes (<0:
// unknown) to a live session of the project: 503 below the free-space floor, 413 when
// the session's files and the upload together would pass SessionMax. A session that is
// not live here passes (the upload itself answers 404).
func (m *Manager) CheckUpload(ctx context.Context, projectID, id string, size int64) error {
	if err := m.checkFreeDisk(); err != nil {
		return err
	}
	limit := m.cfg.Disk.SessionMax
	m.mu.Lock()
	ls := m.live[id]
	m.mu.Unlock()
	if limit < 0 || ls == nil || ls.projectID != projectID {
		return nil
	}
	used, err := m.sessionBytes(ctx, ls, limit)
	if err != nil {
		return fmt.Errorf("measure session files: %w", err)
	}
	if used+max(size, 0) > limit {
		return &Error{Code: CodeTooLarge, NoRetry: true, Message: fmt.Sprintf(
			"The upload would take the session's files past their disk quota (%s; %s used).", sizeText(limit), sizeText(used))}
	}
	return nil
}

// sizeText writes n bytes in MiB, or KiB when less than 1 MiB.
func sizeText(n int64) string {
	if n < 1<<20 {
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n>>20, 10) + " MiB"
}
