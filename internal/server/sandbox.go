package main

import (
	"fmt"
	"strconv"
	"strings"

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

// sandboxOptions are the flags of SandboxFlags; opt builds an option as options() does.
func (c *Config) sandboxOptions(opt func(name, help string, set func(string) error, show func() string) option) []option {
	sf := &c.Sandbox
	str := func(p *string) (func(string) error, func() string) {
		return func(v string) error { *p = v; return nil }, func() string { return *p }
	}
	f, s := intFlag(&sf.UIDBase)
	bf, bs := str(&sf.Bwrap)
	df, ds := str(&sf.Dir)
	allow := opt("allow-private-networks", "let browsers reach loopback, link-local (cloud metadata) and private addresses through their session proxy; off, a browser reaches only public addresses (the server's own ports stay closed to browsers either way)",
		func(v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("not true or false: %q", v)
			}
			sf.AllowPrivateNetworks = b
			return nil
		}, func() string { return strconv.FormatBool(sf.AllowPrivateNetworks) })
	allow.boolean = true
	return []option{
		allow,
		opt("sandbox-dir", "as root: where the browsers' directories go when the data dir's parents are not searchable by other users (default /var/tmp/browserd)", df, ds),
		opt("sandbox-uid-base", "as root: browsers run as uids from this one up, one uid per running browser (default 2000000000)", f, s),
		opt("bwrap", "bubblewrap binary that confines every browser (default: bwrap on PATH)", bf, bs),
	}
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
