package certs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	bb "github.com/browserd/browserd"
)

// Config configures a Service.
type Config struct {
	// Store keeps the certificates. Required.
	Store bb.CertificateStore
	// CanTrust tells whether the launcher can make browsers trust certificates
	// (chrome.Launcher.CanTrustCertificates: certutil is installed). Without it a
	// create that names certificates is refused with a message saying why; uploads
	// still work.
	CanTrust bool
	// Now is the clock certificates are checked against [time.Now].
	Now func() time.Time
	// Logger gets the service's events [discard].
	Logger *slog.Logger
}

// WarmPool is the Manager's warm pool, told when a certificate is deleted so that no
// waiting browser keeps trusting it.
type WarmPool interface {
	FilesGone(key string)
}

// A Service serves /v1/certificates and is the part that makes sessions trust them.
type Service struct {
	cfg  Config
	log  *slog.Logger
	warm WarmPool // set by SetWarmPool; nil for none
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("certs: a store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// SetWarmPool connects the Service to the warm pool of the Manager it is a part of;
// call it before sessions start (the Manager is created after its parts).
func (s *Service) SetWarmPool(w WarmPool) { s.warm = w }

// CreateCertificate checks an uploaded CA certificate (bb.ParseCACertificate) and
// stores it in the key's project. r is read to its end, or until it passes
// bb.MaxCertificateSize (CodeTooLarge). Only the certificate is kept, never what else
// the file held.
func (s *Service) CreateCertificate(ctx context.Context, keyProjectID string, r io.Reader) (*bb.Certificate, error) {
	data, err := io.ReadAll(io.LimitReader(r, bb.MaxCertificateSize+1))
	if err != nil {
		if _, ok := errors.AsType[*bb.Error](err); ok {
			return nil, err // such as the HTTP layer's own size limit
		}
		return nil, &bb.Error{Code: bb.CodeInvalid, Message: "the uploaded file could not be read", Err: err}
	}
	_, pem, err := bb.ParseCACertificate(data, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	c := &bb.Certificate{ID: bb.NewID(), ProjectID: keyProjectID, CreatedAt: now, UpdatedAt: now, PEM: pem}
	if err := s.cfg.Store.CreateCertificate(ctx, c, bb.MaxCertificates); err != nil {
		return nil, err
	}
	return c, nil
}

// Certificate returns a certificate of the project, or bb.CodeNotFound (also for
// another project's).
func (s *Service) Certificate(ctx context.Context, keyProjectID, id string) (*bb.Certificate, error) {
	notFound := bb.Errorf(bb.CodeNotFound, "Certificate %s not found", safeID(id))
	if !bb.ValidID(id) {
		return nil, notFound
	}
	c, err := s.cfg.Store.Certificate(ctx, id)
	if bb.CodeOf(err) == bb.CodeNotFound || (err == nil && c.ProjectID != keyProjectID) {
		return nil, notFound
	} else if err != nil {
		return nil, err
	}
	return c, nil
}

// Certificates returns the project's certificates, oldest first.
func (s *Service) Certificates(ctx context.Context, keyProjectID string) ([]*bb.Certificate, error) {
	return s.cfg.Store.Certificates(ctx, keyProjectID)
}

// DeleteCertificate deletes a certificate of the project and closes the warm browsers
// that trust it. Sessions running with it keep trusting it until they end.
func (s *Service) DeleteCertificate(ctx context.Context, keyProjectID, id string) error {
	if _, err := s.Certificate(ctx, keyProjectID, id); err != nil {
		return err
	}
	if _, err := s.cfg.Store.DeleteCertificate(ctx, id); bb.CodeOf(err) == bb.CodeNotFound {
		return bb.Errorf(bb.CodeNotFound, "Certificate %s not found", id)
	} else if err != nil {
		return fmt.Errorf("delete certificate %s: %w", id, err)
	}
	if s.warm != nil {
		s.warm.FilesGone(bb.CertificateFilesKey(id))
	}
	return nil
}

// safeID bounds an id from a request before it goes in a message.
func safeID(id string) string {
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return fmt.Sprintf("%q", id)
}
