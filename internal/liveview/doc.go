// Package liveview serves what people look at: the live view of a session (a page that
// shows a tab of the session's browser through CDP Page.startScreencast and sends mouse,
// wheel and keyboard input back), Chromium's own DevTools frontend proxied from the
// session's browser, and the dashboard at / (sign in with an API key, sessions, a
// session's live view, pages, logs and downloads).
//
// Live view URLs (GET /v1/sessions/{id}/debug) carry a token made by bb.Signer: the
// session, an expiry and a read-only bit under an HMAC. The token is the only credential,
// so the pages can be embedded in another site's iframe; the dashboard instead keeps the
// API key on the server behind an HttpOnly cookie, with a CSRF token on every form.
package liveview
