package browserd

import (
	"context"
	"fmt"
)

// Reconcile repairs what an earlier run of this node left behind: it kills leftover
// browsers, removes their files, and ends the sessions the store still has as live on
// this node with status ERROR. Call it once, before serving.
func (m *Manager) Reconcile(ctx context.Context) error {
	killed, err := m.cfg.Launcher.Reap(ctx)
	if err != nil {
		return fmt.Errorf("reap leftover browsers: %w", err)
	}
	stale, err := m.store.Sessions(ctx, SessionFilter{NodeID: m.cfg.NodeID, LiveOnly: true})
	if err != nil {
		return fmt.Errorf("list live sessions: %w", err)
	}
	for _, s := range stale {
		if _, err := m.endInStore(ctx, s.ID, StatusError, "server restarted; the browser was lost"); err != nil {
			return fmt.Errorf("end stale session %s: %w", s.ID, err)
		}
	}
	if killed > 0 || len(stale) > 0 {
		m.log.Warn("reconciled earlier run", "killed_processes", killed, "ended_sessions", len(stale))
	}
	m.startPool()
	m.startSweep()     // endrecord.go
	m.startDiskWatch() // disk.go
	return nil
}

// startPool starts the warm pool's refill loop, once; launches must wait for Reap.
func (m *Manager) startPool() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pool == nil || m.poolStarted || m.closed {
		return
	}
	m.poolStarted = true
	m.wg.Go(m.pool.run)
}
