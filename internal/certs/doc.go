// Package certs serves the CA certificates projects upload (/v1/certificates, spec
// §6.11) and is the SessionPart that makes a session trust the ones its create names
// in proxySettings.caCertificates: Check resolves them in the key's project (404
// otherwise) before anything is recorded, for the session proxy's TLS to https upstream
// proxies, and Prepare adds one bb.LaunchFiles per certificate, from which
// internal/chrome builds the browser's own NSS database. The warm pool keeps browsers
// per set of certificates; deleting one closes the warm browsers that trust it.
package certs
