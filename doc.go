// Package browserd is the domain of browserd, a self-hostable server that speaks the
// Browserbase v1 API: sessions of real headless Chromium, projects, API keys and the
// session Manager that owns every browser process.
//
// The package imports only the standard library. Storage, the Chromium launcher, the
// CDP gateway and the HTTP API live in internal/ packages that depend on this one; the
// interfaces they satisfy (SessionStore, Launcher, …) are declared here, by their consumer.
package browserd
