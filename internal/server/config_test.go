package server

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	bb "github.com/browserd/browserd"
)

// TestConfigLoad checks the order defaults < BROWSERD_* < flags, and how values parse.
func TestConfigLoad(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(c Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.MaxSessions == bb.DefaultMaxSessions && c.ConnectTimeout == 5*time.Minute && c.PoolSize == 2 &&
				c.Artifacts.RecordSessions && c.Artifacts.LogEvents && !c.Sandbox.AllowPrivateNetworks && c.SessionDiskMax == bb.DefaultSessionDiskMax
		}},
		{name: "env", env: map[string]string{"BROWSERD_MAX_SESSIONS": "5", "BROWSERD_CONNECT_TIMEOUT": "0", "BROWSERD_SESSION_DISK_MAX": "1GiB"},
			check: func(c Config) bool { return c.MaxSessions == 5 && c.ConnectTimeout == 0 && c.SessionDiskMax == 1<<30 }},
		{name: "flag beats env", args: []string{"--max-sessions", "7"}, env: map[string]string{"BROWSERD_MAX_SESSIONS": "5"},
			check: func(c Config) bool { return c.MaxSessions == 7 }},
		{name: "bool alone", args: []string{"--allow-private-networks"}, check: func(c Config) bool { return c.Sandbox.AllowPrivateNetworks }},
		{name: "bool with value", args: []string{"--record-sessions=false"}, check: func(c Config) bool { return !c.Artifacts.RecordSessions }},
		{name: "log events off", env: map[string]string{"BROWSERD_LOG_BROWSER_EVENTS": "false"}, check: func(c Config) bool { return !c.Artifacts.LogEvents }},
		{name: "bool env", env: map[string]string{"BROWSERD_ALLOW_PRIVATE_NETWORKS": "true"}, check: func(c Config) bool { return c.Sandbox.AllowPrivateNetworks }},
		{name: "bad env", env: map[string]string{"BROWSERD_MAX_SESSIONS": "many"}, wantErr: `BROWSERD_MAX_SESSIONS: not a whole number: "many"`},
		{name: "bad flag", args: []string{"--pool-idle", "soon"}, wantErr: `not a duration`},
		{name: "invalid", args: []string{"--max-sessions", "0"}, wantErr: "max-sessions must be at least 1"},
		{name: "argument", args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
		{name: "single node drains only when told", check: func(c Config) bool {
			return c.drainTimeout() == 0 && c.DrainTimeout == 5*time.Minute && !c.DrainSet
		}},
		{name: "drain-timeout given", args: []string{"--drain-timeout", "30s"},
			check: func(c Config) bool { return c.DrainSet && c.drainTimeout() == 30*time.Second }},
		{name: "drain-timeout env", env: map[string]string{"BROWSERD_DRAIN_TIMEOUT": "0s"},
			check: func(c Config) bool { return c.DrainSet && c.drainTimeout() == 0 }},
		{name: "cluster drains by default", args: []string{"--cluster-url", "http://10.0.3.7:8080", "--database", "postgres://u:p@db/b"},
			check: func(c Config) bool { return c.drainTimeout() == 5*time.Minute }},
		{name: "cluster needs postgres", args: []string{"--cluster-url", "http://10.0.3.7:8080"}, wantErr: "cluster-url needs a PostgreSQL --database"},
		{name: "cluster url with a path", args: []string{"--cluster-url", "http://10.0.3.7:8080/x", "--database", "postgres://u:p@db/b"},
			wantErr: "must have no path"},
		{name: "cluster url without scheme", env: map[string]string{"BROWSERD_CLUSTER_URL": "10.0.3.7:8080", "BROWSERD_DATABASE": "postgres://u:p@db/b"},
			wantErr: "cluster-url"},
		{name: "negative drain", args: []string{"--drain-timeout", "-1s"}, wantErr: "drain-timeout must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.DataDir = t.TempDir()
			var usage bytes.Buffer
			err := c.Load(tt.args, func(k string) string { return tt.env[k] }, &usage)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%q) = %v; want an error with %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load(%q) = %v", tt.args, err)
			}
			if !tt.check(c) {
				t.Errorf("Load(%q, %v) = %+v", tt.args, tt.env, c)
			}
		})
	}
}

// TestConfigHelp checks that -help lists every flag with its variable and never shows a
// secret given in the environment.
func TestConfigHelp(t *testing.T) {
	c := DefaultConfig()
	var usage bytes.Buffer
	env := map[string]string{"BROWSERD_API_KEY": "k3y-from-the-environment-0123", "BROWSERD_PROXY_UPSTREAM": "http://u:pw@proxy:1"}
	if err := c.Load([]string{"-help"}, func(k string) string { return env[k] }, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(-help) = %v; want flag.ErrHelp", err)
	}
	help := usage.String()
	for _, want := range []string{"-max-sessions", "(env BROWSERD_MAX_SESSIONS) (default 32)", "-min-free-disk", "-trusted-proxies", "-record-sessions", "-bwrap"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, secret := range []string{"k3y-from", "pw@proxy"} {
		if strings.Contains(help, secret) {
			t.Errorf("help shows a secret %q", secret)
		}
	}
}
