package bench

import (
	"context"

	"github.com/browserd/browserd/internal/chrome"
)

// benchBareTemplate launches bare Chromium (chrome.BareLauncher): the binary and flags
// browserd's launcher used for a real session, with a fresh profile, and nothing else.
type benchBareTemplate struct {
	l    *chrome.BareLauncher
	path string
	args []string
}

// benchBareBrowser is one bare Chromium.
type benchBareBrowser struct {
	*chrome.BareBrowser
	wsURL string
	pgid  int
}

func benchBareFromPID(pid int, runDir string) (*benchBareTemplate, error) {
	l, err := chrome.NewBareLauncher(pid, runDir)
	if err != nil {
		return nil, err
	}
	t := &benchBareTemplate{l: l}
	t.path, t.args = l.Command()
	return t, nil
}

// launch starts a bare Chromium and returns once it announced its DevTools socket.
func (t *benchBareTemplate) launch(ctx context.Context) (*benchBareBrowser, error) {
	b, err := t.l.Launch(ctx)
	if err != nil {
		return nil, err
	}
	return &benchBareBrowser{BareBrowser: b, wsURL: b.DevToolsURL(), pgid: b.PGID()}, nil
}

// kill sends SIGKILL to the browser's process group; stop finishes the clean-up.
func (b *benchBareBrowser) kill() error { return b.Kill() }

// stop kills b, waits for it, and removes everything it left.
func (t *benchBareTemplate) stop(ctx context.Context, b *benchBareBrowser) error {
	return t.l.Stop(ctx, b.BareBrowser)
}
