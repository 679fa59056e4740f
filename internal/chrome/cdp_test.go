package chrome_test

import (
	"testing"

	"github.com/browserd/browserd/internal/cdp"
	"github.com/browserd/browserd/internal/chrome/chrometest"
)

// dialCDP connects a CDP client to url for the test's length.
func dialCDP(t *testing.T, url string) *cdp.Conn { return chrometest.Dial(t, url) }
