package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"

	bb "github.com/browserd/browserd"
)

// The Service is the SessionPart of proxySettings.caCertificates.
var _ bb.SessionPart = (*Service)(nil)

// Check resolves the certificates a create request names in the key's project: an
// unknown id, or another project's, is 404 before anything is recorded; one that has
// expired since its upload is 400. The certificates go in req.CACertificates, where
// the setup part finds them for the session proxy (it plans in Prepare, after every
// Check) and Prepare finds them for the browser.
func (s *Service) Check(ctx context.Context, projectID string, req *bb.CreateSessionRequest) error {
	if len(req.CACertificateIDs) == 0 {
		return nil
	}
	if !s.cfg.CanTrust {
		return bb.Errorf(bb.CodeInvalid, "this server cannot trust custom CA certificates (proxySettings.caCertificates): certutil (Debian package libnss3-tools) is not installed")
	}
	certs := make([]*bb.Certificate, 0, len(req.CACertificateIDs))
	for _, id := range req.CACertificateIDs {
		c, err := s.Certificate(ctx, projectID, id)
		if err != nil {
			return err
		}
		if err := s.stillValid(c); err != nil {
			return err
		}
		certs = append(certs, c)
	}
	// In id order whoever built the request: equal sets give equal launch keys.
	slices.SortFunc(certs, func(a, b *bb.Certificate) int { return strings.Compare(a.ID, b.ID) })
	req.CACertificates = certs
	return nil
}

// stillValid refuses a certificate that expired after it was uploaded.
func (s *Service) stillValid(c *bb.Certificate) error {
	block, _ := pem.Decode(c.PEM)
	if block == nil {
		return bb.Errorf(bb.CodeInvalid, "certificate %s is damaged; upload it again", c.ID)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return bb.Errorf(bb.CodeInvalid, "certificate %s is damaged; upload it again", c.ID)
	}
	if s.cfg.Now().After(cert.NotAfter) {
		return bb.Errorf(bb.CodeInvalid, "certificate %s expired at %s", c.ID, cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return nil
}

// Prepare adds one bb.LaunchFiles per certificate (sorted by id, as the request's ids
// are), so that the warm pool keeps browsers per set of certificates and a deleted
// certificate's key closes those that trust it. The session needs no run.
func (s *Service) Prepare(_ context.Context, _ *bb.Session, req *bb.CreateSessionRequest, opts *bb.LaunchOptions) (bb.PartRun, error) {
	for _, c := range req.CACertificates {
		opts.Files = append(opts.Files, certificateFiles(c))
	}
	return nil, nil
}

// certificateFiles are the launch files of a trusted certificate: its PEM, which the
// launcher adds to the browser's certificate database.
func certificateFiles(c *bb.Certificate) bb.LaunchFiles {
	p := c.PEM
	return bb.LaunchFiles{
		Key: bb.CertificateFilesKey(c.ID),
		Make: func(context.Context) (bb.MadeFiles, func(), error) {
			return bb.MadeFiles{CACertificates: [][]byte{p}}, nil, nil
		},
	}
}
