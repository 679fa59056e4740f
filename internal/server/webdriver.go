package server

import (
	"errors"
	"fmt"
	"log/slog"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/artifacts"
	"github.com/browserd/browserd/internal/webdriver"
)

// newWebDriver builds the Selenium endpoint (seleniumRemoteUrl, spec §4.2). A chromedriver
// named by --chromedriver must exist; when none was named and none is installed, the
// server still starts, and New Session answers that Selenium is not available.
func newWebDriver(cfg Config, mgr *bb.Manager, art *artifacts.Service, reserved *bb.ReservedPorts, logger *slog.Logger) (*webdriver.Handler, error) {
	path, err := webdriver.FindChromedriver(cfg.Chromedriver)
	if err != nil {
		if cfg.Chromedriver != "" || !errors.Is(err, webdriver.ErrNotFound) {
			return nil, fmt.Errorf("%w (install it with `apt-get install -y chromium-driver`)", err)
		}
		logger.Warn("chromedriver not found: Selenium (seleniumRemoteUrl) is not available", "err", err)
		path = ""
	}
	return webdriver.New(webdriver.Config{
		Sessions:     mgr,
		Chromedriver: path,
		Logger:       logger,
		IdleTimeout:  cfg.IdleTimeout,
		Artifacts:    art,
		Ports:        reserved, // no browser may reach a chromedriver (docs/SECURITY.md)
	})
}
