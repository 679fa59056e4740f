package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"

	bb "github.com/browserd/browserd"
)

// failure turns an error of the request or of reading the body into the API's answer:
// a refusal by Dial or CheckRedirect as it is (prefixed with the redirect it came from),
// the fetch's own deadline as 504, certificate failures as a 502 that is not retried,
// and anything else the site did as a 502 naming the cause without the addresses.
// orig is the requested URL, current the hop that failed.
func (f *Fetcher) failure(ctx, fctx context.Context, orig, current *url.URL, err error) error {
	if e, ok := errors.AsType[*bb.Error](err); ok {
		if current != orig {
			return &bb.Error{Code: e.Code, NoRetry: e.NoRetry, Err: e.Err,
				Message: fmt.Sprintf("%s redirected to %s: %s", orig.Redacted(), current.Redacted(), e.Message)}
		}
		return e
	}
	if ctx.Err() != nil {
		return ctx.Err() // the client went away
	}
	if fctx.Err() != nil {
		return &bb.Error{Code: bb.CodeTimeout, Err: err,
			Message: fmt.Sprintf("%s did not answer within %s, this server's limit for a fetch (--fetch-timeout)", current.Redacted(), f.cfg.Timeout)}
	}
	bad := func(format string, args ...any) error {
		return &bb.Error{Code: bb.CodeBadGateway, Err: err, Message: fmt.Sprintf(format, args...)}
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid):
		e := bad("the TLS certificate of %s could not be verified; set allowInsecureSsl to fetch it anyway", current.Host)
		e.(*bb.Error).NoRetry = true
		return e
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok {
		e := bad("the host %s could not be resolved", dnsErr.Name)
		e.(*bb.Error).NoRetry = dnsErr.IsNotFound
		return e
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return bad("%s refused the connection", current.Host)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return bad("%s closed the connection before its answer was complete", current.Host)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return bad("%s cannot be reached from this server", current.Host)
	}
	return bad("fetching %s failed", current.Redacted())
}

// Causes kept in the *bb.Error of a failure, for outcomeOf.
var (
	errTooLarge = errors.New("fetch: response too large")
	errExtract  = errors.New("fetch: extraction failed")
)

// outcomeOf is the Record outcome of a failed fetch.
func outcomeOf(err error) string {
	switch bb.CodeOf(err) {
	case bb.CodeForbidden:
		return "refused"
	case bb.CodeTimeout:
		return "timeout"
	case bb.CodeUnprocessable:
		return "unprocessable"
	}
	switch {
	case errors.Is(err, errTooLarge):
		return "too_large"
	case errors.Is(err, errExtract):
		return "extract_failed"
	}
	return "error"
}
