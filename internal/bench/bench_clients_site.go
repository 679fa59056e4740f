package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"sync/atomic"
)

// benchSite is the small real site of the clients phase, served with the other bench
// pages: two HTML pages (a form with a password field, text, a list the script builds),
// each loading one script and one image. Nothing is cached (no-store), so every
// navigation fetches all three. It counts the requests, so the phase can tell that the
// pages were loaded whole.
type benchSite struct {
	pages, scripts, images atomic.Int64
	png                    []byte
}

// benchSitePage is %[1]s: the page's name.
const benchSitePage = `<!doctype html><html><head><meta charset="utf-8"><title>bench %[1]s</title>
<style>body{font:16px sans-serif;margin:2em}li{margin:2px 0}</style></head>
<body><h1>browserd bench: %[1]s</h1>
<p>A small page with a form, an image and a script, as a login page has.</p>
<form><label>user <input name="user" value="alice"></label>
<label>password <input name="pw" type="password" value="secret"></label><button type="button">sign in</button></form>
<img src="/site/img.png" width="64" height="64" alt="logo">
<ul id="list"></ul>
<script src="/site/app.js"></script>
</body></html>`

// benchSiteScript builds a list and marks the page ready; the phase checks the mark.
const benchSiteScript = `(function () {
  const ul = document.getElementById('list');
  for (let i = 0; i < 100; i++) {
    const li = document.createElement('li');
    li.textContent = 'item ' + i + ' of ' + location.pathname;
    ul.appendChild(li);
  }
  document.body.dataset.ready = '1';
})();
`

func (s *benchSite) register(mux *http.ServeMux) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := range 64 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{R: uint8(4 * x), G: uint8(4 * y), B: 128, A: 255})
		}
	}
	var b bytes.Buffer
	_ = png.Encode(&b, img) // encoding to memory cannot fail
	s.png = b.Bytes()
	serve := func(n *atomic.Int64, ctype string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(body) // a browser that went away needs no page
		}
	}
	for _, name := range []string{"first", "next"} {
		mux.HandleFunc("GET /site/"+name, serve(&s.pages, "text/html; charset=utf-8", fmt.Appendf(nil, benchSitePage, name)))
	}
	mux.HandleFunc("GET /site/app.js", serve(&s.scripts, "text/javascript", []byte(benchSiteScript)))
	mux.HandleFunc("GET /site/img.png", serve(&s.images, "image/png", s.png))
}

// counts returns the requests served so far: pages, scripts, images.
func (s *benchSite) counts() [3]int64 {
	return [3]int64{s.pages.Load(), s.scripts.Load(), s.images.Load()}
}
