// Package webhooks delivers session events to the webhooks of a project (SDK 2.21
// resources/webhooks, docs/COMPATIBILITY.md "Webhooks"): the service behind /v1/webhooks
// (create, get, list, update, delete, rotate the secret, list deliveries), the event sink
// the Manager and the artifacts report to (Emit), and the delivery loop.
//
// Every event is written to the store's durable outbox (bb.WebhookStore) before anything
// is sent, one delivery per subscribed webhook, so a receiver that is down and a server
// that restarts lose nothing. The loop claims due deliveries with a lease (several nodes
// of a cluster share one outbox; each delivery is sent by one node at a time), POSTs
// them signed in the Standard Webhooks scheme (sign.go), and retries any answer but a
// 2xx with exponential backoff and jitter for Config.RetryFor (24 h), then marks it
// failed. Every attempt is recorded. Connections go only to addresses Config.CheckAddr
// allows, checked on the address actually dialled (no DNS rebinding).
package webhooks
