package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	bb "github.com/browserd/browserd"
)

const certificateColumns = `id, project_id, created_at, updated_at, pem`

func scanCertificate(r rowScanner) (*bb.Certificate, error) {
	var c bb.Certificate
	var created, updated sql.NullInt64
	var pem string
	if err := r.Scan(&c.ID, &c.ProjectID, &created, &updated, &pem); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.PEM = fromMillis(created), fromMillis(updated), []byte(pem)
	return &c, nil
}

// CreateCertificate inserts c unless its project already has limit certificates
// (bb.CertificateLimitError). The count and the insert are one write transaction, and
// SQLite has one writer, so racing uploads cannot pass the limit.
func (db *DB) CreateCertificate(ctx context.Context, c *bb.Certificate, limit int) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM certificates WHERE project_id = ?`, c.ProjectID).Scan(&n); err != nil {
			return fmt.Errorf("count certificates of project %s: %w", c.ProjectID, err)
		}
		if n >= limit {
			return bb.CertificateLimitError(limit)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO certificates (`+certificateColumns+`) VALUES (?, ?, ?, ?, ?)`,
			c.ID, c.ProjectID, millis(c.CreatedAt), millis(c.UpdatedAt), string(c.PEM))
		switch {
		case isDuplicate(err):
			return bb.Errorf(bb.CodeConflict, "certificate %q already exists", c.ID)
		case errorCode(err) == codeForeignKey:
			return bb.Errorf(bb.CodeNotFound, "project %q not found", c.ProjectID)
		case err != nil:
			return fmt.Errorf("insert certificate %s: %w", c.ID, err)
		}
		return nil
	})
}

// Certificate returns a certificate by id, or a CodeNotFound error.
func (db *DB) Certificate(ctx context.Context, id string) (*bb.Certificate, error) {
	return getCertificate(ctx, db.reads, id)
}

func getCertificate(ctx context.Context, q queryer, id string) (*bb.Certificate, error) {
	c, err := scanCertificate(q.QueryRowContext(ctx, `SELECT `+certificateColumns+` FROM certificates WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "certificate %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("select certificate %s: %w", id, err)
	}
	return c, nil
}

// Certificates returns a project's certificates, oldest first (then by id).
func (db *DB) Certificates(ctx context.Context, projectID string) ([]*bb.Certificate, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+certificateColumns+` FROM certificates
		WHERE project_id = ? ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, fmt.Errorf("select certificates: %w", err)
	}
	out, err := collect(rows, scanCertificate)
	if err != nil {
		return nil, fmt.Errorf("select certificates: %w", err)
	}
	return out, nil
}

// DeleteCertificate deletes a certificate and returns it as it was, or CodeNotFound.
func (db *DB) DeleteCertificate(ctx context.Context, id string) (*bb.Certificate, error) {
	var out *bb.Certificate
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		c, err := getCertificate(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM certificates WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete certificate %s: %w", id, err)
		}
		out = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
