package chrome

import (
	"slices"
	"strings"
)

// SetBackgroundIdle chooses for the measurements whether background launches also run
// under SCHED_IDLE (the default) or at niceness 19 only.
func (l *Launcher) SetBackgroundIdle(idle bool) {
	if l.background != nil {
		l.background = backgroundCommand(idle, l.log)
	}
}

// SetSpareRenderer chooses for the measurements whether browsers keep Chromium's spare
// renderer.
func (l *Launcher) SetSpareRenderer(on bool) { l.spare = on }

// SetSpareRenderer chooses for the measurements whether bare browsers keep Chromium's
// spare renderer (their --disable-features flag is the Launcher's).
func (l *BareLauncher) SetSpareRenderer(on bool) {
	for i, a := range l.args {
		v, ok := strings.CutPrefix(a, "--disable-features=")
		if !ok {
			continue
		}
		fs := slices.DeleteFunc(strings.Split(v, ","), func(f string) bool { return f == spareRendererFeature || f == "" })
		if !on {
			fs = append(fs, spareRendererFeature)
		}
		l.args[i] = "--disable-features=" + strings.Join(fs, ",")
	}
}
