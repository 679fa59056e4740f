package browserd

import (
	"context"
	"fmt"
	"time"
)

// The Manager's launch path: a warm browser from the pool or a new launch, and the
// pool's notifications from the parts (launch files changed or gone, prewarming).

// launch returns a ready browser for opts: a warm one from the pool when it has one
// for opts, else a new one, at most MaxLaunches starting at a time. ctx bounds the wait.
func (m *Manager) launch(ctx context.Context, opts LaunchOptions) (Browser, error) {
	if b := m.pool.take(opts); b != nil {
		return b, nil
	}
	if m.pool != nil {
		m.pool.coldWaiting.Add(1)
		defer func() {
			m.pool.coldWaiting.Add(-1)
			m.pool.touch(opts)
			m.pool.wake() // refills wait for cold creates
		}()
	}
	for {
		// A refill for these options already under way serves this create sooner than
		// a launch of its own (it started earlier): wait for it rather than start another.
		// Else, a warm browser that becomes ready while this create waits for a launch
		// slot (a refill that was just starting) serves it at once.
		warmReady := m.pool.readySignal(opts)
		if b := m.pool.takeReady(opts); b != nil {
			m.pool.misses.Add(-1) // take counted a miss; it is a hit after all
			m.pool.hits.Add(1)
			return b, nil
		}
		if warmReady != nil {
			m.pool.hurry(opts) // a background refill would be slow: raise it now
			select {
			case <-warmReady:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-m.ctx.Done():
				return nil, ErrManagerClosed
			}
		}
		select {
		case m.launchSem <- struct{}{}:
			defer func() { <-m.launchSem }()
			// A refill may have finished just as the slot came free.
			if b := m.pool.takeReady(opts); b != nil {
				m.pool.misses.Add(-1)
				m.pool.hits.Add(1)
				return b, nil
			}
			return m.startBrowser(ctx, opts, true, nil)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.ctx.Done():
			return nil, ErrManagerClosed
		}
	}
}

// FilesChanged tells the warm pool that the content behind files.Key changed (a
// context was written back): warm browsers made with an older version are closed, and
// refills use files. Parts that make LaunchFiles call it (internal/profiles).
func (m *Manager) FilesChanged(files LaunchFiles) { m.pool.filesChanged(files) }

// Prewarm tells the warm pool that a create with opts is likely soon (a session wrote
// its context back): the pool launches a browser for them ahead, if it keeps browsers
// for keys other than the default one (PoolConfig.Keyed).
func (m *Manager) Prewarm(opts LaunchOptions) { m.pool.prewarm(opts) }

// FilesGone tells the warm pool that the files named key are gone (a context or an
// extension was deleted): the warm browsers made with them are closed at once.
func (m *Manager) FilesGone(key string) { m.pool.filesGone(key) }

// startBrowser launches a browser owned by the Manager and waits, bounded by ctx and
// LaunchTimeout, until it is ready; a browser that fails to get ready is closed.
// requested tells that opts carry arguments derived from a create request: an exec of
// them that the kernel refuses is then ErrLaunchArgs (observe.go).
//
// started, when set, gets the browser as soon as its process runs, before it is ready.
func (m *Manager) startBrowser(ctx context.Context, opts LaunchOptions, requested bool, started func(Browser)) (_ Browser, err error) {
	defer m.observeLaunch(time.Now(), &err)
	opts, cleanup, err := makeFiles(ctx, opts)
	if err != nil {
		return nil, err
	}
	b, err := m.cfg.Launcher.Launch(m.ctx, opts)
	cleanup() // the launcher moved or copied the files into the browser's directory
	if err != nil {
		if requested && execArgsRefused(err) {
			err = fmt.Errorf("%w: %w", ErrLaunchArgs, err)
		}
		return nil, err
	}
	if started != nil {
		started(b)
	}
	wctx, cancel := context.WithTimeout(ctx, m.cfg.LaunchTimeout)
	defer cancel()
	if err := b.WaitReady(wctx); err != nil {
		if cerr := b.Close(context.WithoutCancel(ctx)); cerr != nil {
			m.log.Warn("close unready browser", "session_id", opts.SessionID, "err", cerr)
		}
		return nil, err
	}
	return b, nil
}
