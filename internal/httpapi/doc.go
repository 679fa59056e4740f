// Package httpapi serves the Browserbase v1 REST API (spec/API.md) over a session
// service, normally a *browserd.Manager: sessions, projects and usage, with the
// Browserbase error shape, API-key authentication and per-request ids.
//
// The handler serves paths that start with /v1/. A reverse proxy that publishes the API
// under a path prefix (Config.PublicURL) strips that prefix before forwarding.
package httpapi
