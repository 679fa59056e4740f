package server

import (
	"fmt"

	"github.com/browserd/browserd/internal/chrome"
)

// SandboxFlags configure how browsers are confined (docs/SECURITY.md).
type SandboxFlags struct {
	// AllowPrivateNetworks lets session proxies reach loopback, link-local and private
	// addresses (off: a browser reaches only the public internet). The server's own
	// ports stay refused either way.
	AllowPrivateNetworks bool
	Dir                  string // SandboxConfig.Root; "" = /var/tmp/browserd
	UIDBase              int    // first uid of the browsers when the server is root
	Bwrap                string // bubblewrap binary; "" = bwrap on PATH
}

// flags defines the flags of SandboxFlags.
func (sf *SandboxFlags) flags(f flagTable) {
	f.boolean(&sf.AllowPrivateNetworks, "allow-private-networks", "let browsers reach loopback, link-local (cloud metadata) and private addresses through their session proxy; off, a browser reaches only public addresses (the server's own ports stay closed to browsers either way)", true)
	f.str(&sf.Dir, "sandbox-dir", "as root: where the browsers' directories go when the data dir's parents are not searchable by other users (default /var/tmp/browserd)")
	f.num(&sf.UIDBase, "sandbox-uid-base", "as root: browsers run as uids from this one up, one uid per running browser (default 2000000000)")
	f.str(&sf.Bwrap, "bwrap", "bubblewrap binary that confines every browser (default: bwrap on PATH)")
}

// validate checks the sandbox flags.
func (sf SandboxFlags) validate() []error {
	if sf.UIDBase != 0 && (sf.UIDBase < 1000 || sf.UIDBase > 2147483646-65536) {
		return []error{fmt.Errorf("sandbox-uid-base must be 1000 to %d, got %d", 2147483646-65536, sf.UIDBase)}
	}
	return nil
}

// chromeSandbox is the launcher's sandbox configuration.
func (sf SandboxFlags) chromeSandbox() chrome.SandboxConfig {
	return chrome.SandboxConfig{Bwrap: sf.Bwrap, Root: sf.Dir, UIDBase: sf.UIDBase}
}
