package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	bb "github.com/browserd/browserd"
)

const certificateColumns = `id, project_id, created_at, updated_at, pem`

func scanCertificate(r pgx.Row) (*bb.Certificate, error) {
	var c bb.Certificate
	var created, updated *int64
	var pem string
	if err := r.Scan(&c.ID, &c.ProjectID, &created, &updated, &pem); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.PEM = fromMillis(created), fromMillis(updated), []byte(pem)
	return &c, nil
}

// CreateCertificate inserts c unless its project already has limit certificates
// (bb.CertificateLimitError). As CreateSession does, the transaction first locks the
// project's row, so that uploads from any process count and insert one at a time.
func (db *DB) CreateCertificate(ctx context.Context, c *bb.Certificate, limit int) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR UPDATE`, c.ProjectID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return bb.Errorf(bb.CodeNotFound, "project %q not found", c.ProjectID)
		} else if err != nil {
			return fmt.Errorf("lock project %s: %w", c.ProjectID, err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM certificates WHERE project_id = $1`, c.ProjectID).Scan(&n); err != nil {
			return fmt.Errorf("count certificates of project %s: %w", c.ProjectID, err)
		}
		if n >= limit {
			return bb.CertificateLimitError(limit)
		}
		_, err = tx.Exec(ctx, `INSERT INTO certificates (`+certificateColumns+`) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, c.ProjectID, millis(c.CreatedAt), millis(c.UpdatedAt), string(c.PEM))
		if code, _ := pgCode(err); code == codeUnique {
			return bb.Errorf(bb.CodeConflict, "certificate %q already exists", c.ID)
		} else if err != nil {
			return fmt.Errorf("insert certificate %s: %w", c.ID, err)
		}
		return nil
	})
}

// Certificate returns a certificate by id, or a CodeNotFound error.
func (db *DB) Certificate(ctx context.Context, id string) (*bb.Certificate, error) {
	c, err := scanCertificate(db.pool.QueryRow(ctx, `SELECT `+certificateColumns+` FROM certificates WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "certificate %q not found", id)
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("select certificate %s: %w", id, err))
	}
	return c, nil
}

// Certificates returns a project's certificates, oldest first (then by id).
func (db *DB) Certificates(ctx context.Context, projectID string) ([]*bb.Certificate, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+certificateColumns+` FROM certificates
		WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select certificates: %w", err))
	}
	out, err := collect(rows, scanCertificate)
	if err != nil {
		return nil, db.classify(fmt.Errorf("select certificates: %w", err))
	}
	return out, nil
}

// DeleteCertificate deletes a certificate and returns it as it was, or CodeNotFound.
func (db *DB) DeleteCertificate(ctx context.Context, id string) (*bb.Certificate, error) {
	c, err := scanCertificate(db.pool.QueryRow(ctx, `DELETE FROM certificates WHERE id = $1 RETURNING `+certificateColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, bb.Errorf(bb.CodeNotFound, "certificate %q not found", id)
	} else if err != nil {
		return nil, db.classify(fmt.Errorf("delete certificate %s: %w", id, err))
	}
	return c, nil
}
