package browserd

import (
	"context"
	"time"
)

// Usage is what a browser's process tree has used so far.
type Usage struct {
	// CPU is the user plus system CPU time of its processes, children that exited and
	// were reaped included.
	CPU time.Duration
	// Memory is the proportional set size of its processes, in bytes.
	Memory int64
}

// UsageReporter is implemented by browsers that can measure their process tree
// (internal/chrome).
type UsageReporter interface {
	Usage() (Usage, error)
}

// SessionUsage is a live session's use of the machine, measured at At.
type SessionUsage struct {
	SessionID string
	ProjectID string
	Usage
	At time.Time
}

// usageTTL is how long a measurement is reused. Measuring a browser costs about 30 ms
// of CPU, mostly the kernel walking page tables for smaps_rollup (BenchmarkGroupUsage),
// and API reads, metric scrapes and the end of a session all ask: at most one
// measurement per live session per usageTTL bounds it to ~0.3% of a core per session.
const usageTTL = 10 * time.Second

// LiveUsage measures the browsers of the sessions live on this node.
func (m *Manager) LiveUsage() []SessionUsage {
	m.mu.Lock()
	live := make([]*liveSession, 0, len(m.live))
	for _, ls := range m.live {
		if !ls.ending {
			live = append(live, ls)
		}
	}
	m.mu.Unlock()
	out := make([]SessionUsage, 0, len(live))
	for _, ls := range live {
		if u, ok := m.measure(ls); ok {
			out = append(out, u)
		}
	}
	return out
}

// measure returns a recent measurement of a live session's browser: a new one, or the
// last one when the browser cannot be measured any more (it exited).
func (m *Manager) measure(ls *liveSession) (SessionUsage, bool) {
	m.mu.Lock()
	prev, ok := ls.usage, ls.hasUsage
	m.mu.Unlock()
	if ok && time.Since(prev.At) < usageTTL {
		return prev, true
	}
	r, canMeasure := ls.browser.(UsageReporter)
	if !canMeasure {
		return prev, ok
	}
	u, err := r.Usage()
	if err != nil {
		return prev, ok
	}
	su := SessionUsage{SessionID: ls.id, ProjectID: ls.projectID, Usage: u, At: time.Now()}
	m.mu.Lock()
	if !ls.ending { // an ended session's sample was dropped (forgetUsage); don't bring it back
		ls.usage, ls.hasUsage = su, true
	}
	m.mu.Unlock()
	return su, true
}

// avgCPU is the CPU time used per second of wall time since start, in percent of one
// core (docs/COMPATIBILITY.md, "avgCpuUsage and memoryUsage").
func avgCPU(u SessionUsage, start time.Time) int64 {
	wall := u.At.Sub(start)
	if wall < time.Second {
		wall = time.Second // a just-started session would show the launch as hundreds of percent
	}
	return int64(float64(u.CPU) / float64(wall) * 100)
}

// withUsage fills in the CPU and memory of a session that is live on this node.
func (m *Manager) withUsage(s *Session) *Session {
	if s == nil || !s.Live() {
		return s
	}
	m.mu.Lock()
	ls := m.live[s.ID]
	m.mu.Unlock()
	if ls == nil {
		return s
	}
	if u, ok := m.measure(ls); ok {
		u.setOn(s)
	}
	return s
}

// withUsages is withUsage for a list.
func (m *Manager) withUsages(ss []*Session, err error) ([]*Session, error) {
	for _, s := range ss {
		m.withUsage(s)
	}
	return ss, err
}

// lastUsage returns a function that sets the last usage sample of a live session on its
// record, without measuring; nil when there is none.
func (m *Manager) lastUsage(ls *liveSession) func(*Session) {
	m.mu.Lock()
	u, ok := ls.usage, ls.hasUsage
	m.mu.Unlock()
	if !ok {
		return nil
	}
	return u.setOn
}

// setOn sets avgCpuUsage and memoryUsage of s from the sample.
func (u SessionUsage) setOn(s *Session) {
	cpu, mem := avgCPU(u, s.StartedAt), u.Memory
	s.AvgCPUUsage, s.MemoryUsage = &cpu, &mem
}

// forgetUsage drops the last measurement of an ending session.
func (m *Manager) forgetUsage(ls *liveSession) {
	m.mu.Lock()
	ls.usage, ls.hasUsage = SessionUsage{}, false
	m.mu.Unlock()
}

// saveUsage stores the last measurement of an ending session, so that the ended session
// keeps its avgCpuUsage and memoryUsage. finish calls it after recording the end, before
// the browser stops.
func (m *Manager) saveUsage(ctx context.Context, ls *liveSession) {
	u, ok := m.measure(ls)
	m.forgetUsage(ls)
	if !ok {
		return
	}
	_, err := m.store.UpdateSession(ctx, ls.id, func(s *Session) error {
		u.setOn(s)
		return nil
	})
	if err != nil {
		m.log.Warn("save session usage", "session_id", ls.id, "err", err)
	}
}
