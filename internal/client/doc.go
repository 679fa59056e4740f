// Package client is a typed Go client of the Browserbase v1 REST API as browserd serves
// it (spec/API.md): sessions, their live URLs and artifacts, contexts, extensions and
// projects. The CLI (internal/cli) and the bench use it, so the API has one client.
//
// The response types are the client's own, decoded from JSON with the field names of
// spec/API.md §2. They are not internal/httpapi's encode-side structs: internal packages
// never import each other, httpapi must not depend on its clients, and a client also
// talks to Browserbase itself, whose answers are the spec's and not browserd's code.
// Times stay the strings the server sent (RFC 3339), so that a caller shows them as sent.
//
// An answer with another status than the call expects is an *Error, decoded from the
// error body of spec §1.5.
package client
