package chrome

// SetBackgroundIdle chooses for the measurements whether background launches also run
// under SCHED_IDLE (the default) or at niceness 19 only.
func (l *Launcher) SetBackgroundIdle(idle bool) {
	if l.background != nil {
		l.background = backgroundCommand(idle, l.log)
	}
}
