package server

import (
	"os"
	"testing"

	"github.com/browserd/browserd/internal/chrome"
)

// TestMain lets this test binary serve as the browsers' sandbox init (chrome.SandboxInit).
func TestMain(m *testing.M) {
	chrome.SandboxInit()
	os.Exit(m.Run())
}
