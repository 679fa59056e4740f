package server

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"regexp"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/cdpagent"
	"github.com/browserd/browserd/internal/proxy"
)

// parseUpstreams parses --proxy-upstream: comma-separated proxy URLs (a comma inside a
// password must be written %2C). Errors never show a URL, which may carry a password.
func parseUpstreams(list string) ([]bb.ProxyUpstream, error) {
	var ups []bb.ProxyUpstream
	for i, raw := range strings.Split(list, ",") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		u, err := bb.ParseProxyUpstream(raw, "", "")
		if err != nil {
			return nil, fmt.Errorf("proxy-upstream: entry %d %v", i+1, err)
		}
		ups = append(ups, u)
	}
	return ups, nil
}

// setupConfig wires session proxies (with the embedded ad-host list), the CDP
// emulation agent, the managed upstreams and Chromium's version into the Manager.
func setupConfig(ctx context.Context, cfg Config, chromePath string, reserved *bb.ReservedPorts, logger *slog.Logger) (bb.SetupConfig, error) {
	ups, err := parseUpstreams(cfg.ProxyUpstream)
	if err != nil {
		return bb.SetupConfig{}, err
	}
	ads, err := proxy.AdHosts()
	if err != nil {
		return bb.SetupConfig{}, err
	}
	return bb.SetupConfig{
		Proxies: proxy.NewStarter(proxy.Config{
			AdHosts:      ads,
			Logger:       logger,
			AllowPrivate: cfg.Sandbox.AllowPrivateNetworks,
			Reserved:     reserved,
		}),
		Emulator:       &cdpagent.Emulator{Logger: logger},
		ManagedProxies: ups,
		ChromeVersion:  chromeVersion(ctx, chromePath, logger),
	}, nil
}

var versionRE = regexp.MustCompile(`\b(\d+\.\d+\.\d+\.\d+)\b`)

// chromeVersion returns Chromium's full version from `chromium --version`, or "" (the
// emulation agent then sets the user agent over CDP alone).
func chromeVersion(ctx context.Context, path string, logger *slog.Logger) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	m := versionRE.FindSubmatch(out)
	if err != nil || m == nil {
		logger.Warn("chromium version unknown; user agent set over CDP only", "err", err)
		return ""
	}
	return string(m[1])
}
