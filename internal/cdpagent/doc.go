// Package cdpagent is a small CDP client (over github.com/coder/websocket) and the
// per-session agent built on it: a browserd-side connection to a session's browser that
// applies browserSettings which Chromium flags cannot carry (user agent client hints,
// navigator.platform, locale, touch and device metrics) to every page, frame and worker
// before it runs, and blocks main-frame navigations outside allowedDomains with the Fetch
// domain. browserd had no shared CDP client under internal/ when this was written.
package cdpagent
