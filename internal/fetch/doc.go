// Package fetch serves POST /v1/fetch (the SDK's fetchAPI.create): it fetches one URL
// for a project with a plain HTTP client, no browser, and answers with the response's
// status, headers and content, raw, as Markdown (HTML converted with
// github.com/JohannesKaufmann/html-to-markdown/v2), or as JSON a model extracted
// (format "json", only when the operator configured an OpenAI-compatible endpoint; the
// answer is validated against the client's JSON Schema with
// github.com/santhosh-tekuri/jsonschema/v6).
//
// Every connection goes through Config.Dial, which the server builds from the session
// proxies' address policy (internal/proxy.Dialer): loopback, link-local (cloud
// metadata), private and other non-public addresses are refused unless the operator
// allows private networks, the server's own ports always, at connect time, for every
// address a name resolves to, on every redirect hop. A fetch is bounded in size
// (Config.MaxSize), time (Config.Timeout) and number at once (Config.MaxConcurrent on
// the node, Config.MaxPerProject per project). docs/SECURITY.md, "Fetch", lists the
// attacks this stops.
package fetch
