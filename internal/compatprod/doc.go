// Package compatprod runs the npm compatibility suite (compat/run.sh: the official SDK,
// playwright-core, puppeteer-core) against a server on the production backends, a private
// PostgreSQL cluster and a real S3 server (SeaweedFS), as scripts/test.sh does with
// BROWSERD_COMPAT_PRODUCTION=1. It has no code of its own: only its test.
package compatprod
