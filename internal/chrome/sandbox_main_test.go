package chrome_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/browserd/browserd/internal/chrome"
)

// TestMain lets this test binary serve as the browsers' sandbox init (chrome.SandboxInit),
// and checks that every Launcher the tests made removed its copy of the init from the
// default sandbox root (as root: /var/tmp/browserd/init-<pid>-<n>).
func TestMain(m *testing.M) {
	chrome.SandboxInit()
	code := m.Run()
	left, _ := filepath.Glob(fmt.Sprintf("/var/tmp/browserd/init-%d-*", os.Getpid()))
	for _, f := range left {
		fmt.Fprintf(os.Stderr, "sandbox init copy left behind: %s\n", f)
		code = 1
	}
	os.Exit(code)
}
