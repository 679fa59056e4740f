package browserd

import "time"

// emit reports an event to ManagerConfig.Events, if set. It is called after the store
// write that made the event true and never blocks (EventSink.Emit must not).
func (m *Manager) emit(t EventType, s *Session) {
	if m.cfg.Events == nil || s == nil {
		return
	}
	c := *s // the sink may keep it; the caller's record stays the caller's
	m.cfg.Events.Emit(Event{Type: t, ProjectID: s.ProjectID, SessionID: s.ID, At: time.Now().UTC(), Session: &c})
}

// emitBlocked reports a navigation allowedDomains blocked in a session.
func (m *Manager) emitBlocked(projectID, sessionID, url string) {
	if m.cfg.Events == nil {
		return
	}
	m.cfg.Events.Emit(Event{Type: EventNavigationBlocked, ProjectID: projectID, SessionID: sessionID,
		At: time.Now().UTC(), URL: url})
}
