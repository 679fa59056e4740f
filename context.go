package browserd

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// CreateContextRequest is a decoded POST /v1/contexts body (spec §6.1).
type CreateContextRequest struct {
	ProjectID string
	Name      string // trimmed; "" for none
}

// DecodeCreateContextRequest decodes and validates a POST /v1/contexts body. An empty
// body is {}; unknown fields are ignored; errors are CodeInvalid. It sits with the
// other request decoders of the root (request.go) so that every body error has the
// same shape ("body/name …").
func DecodeCreateContextRequest(body []byte) (CreateContextRequest, error) {
	var req CreateContextRequest
	fields, err := decodeObject(body, "body")
	if err != nil {
		return req, err
	}
	if v, ok := fields["projectId"]; ok && !isNull(v) {
		if err := decodeField(v, "projectId", "a string", &req.ProjectID); err != nil {
			return req, err
		}
	}
	if v, ok := fields["name"]; ok && !isNull(v) {
		if err := decodeField(v, "name", "a string", &req.Name); err != nil {
			return req, err
		}
		if req.Name, err = NormalizeContextName(req.Name); err != nil {
			return req, err
		}
	}
	return req, nil
}

// Context is a persisted browser state: a snapshot of a Chromium profile (cookies,
// local storage, IndexedDB, service workers; no caches) that sessions start from and,
// with persist, write back to (spec §2.8, §5.5).
type Context struct {
	ID        string
	ProjectID string
	// Name is optional, trimmed, and unique within the project ignoring case.
	Name      string
	CreatedAt time.Time
	// UpdatedAt changes when a session writes a snapshot back.
	UpdatedAt time.Time

	// Snapshot is the blob key prefix of the current snapshot ("contexts/<id>/<version>/"),
	// "" while the context has none. Writers put a new version and then swap this
	// pointer in one store transaction, so an interrupted write never replaces it.
	Snapshot     string
	SnapshotSize int64 // bytes of the encrypted snapshot
	SnapshotAt   time.Time
}

// ContextStore keeps contexts. Implementations pass internal/storetest.
type ContextStore interface {
	// CreateContext inserts c. A name already used in the project (compared with
	// ContextNameKey) is a CodeConflict error with NoRetry.
	CreateContext(ctx context.Context, c *Context) error
	// Context returns a context by id, or a CodeNotFound error.
	Context(ctx context.Context, id string) (*Context, error)
	// UpdateContext reads a context, calls fn on it and writes it back in one
	// transaction; fn's error aborts and is returned. The id and project can't change.
	UpdateContext(ctx context.Context, id string, fn func(*Context) error) (*Context, error)
	// DeleteContext deletes a context and returns it as it was, or CodeNotFound.
	DeleteContext(ctx context.Context, id string) (*Context, error)
}

// MaxContextNameLength bounds a context name, in characters.
const MaxContextNameLength = 256

// NormalizeContextName trims a context name and checks its length.
func NormalizeContextName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n > MaxContextNameLength {
		return "", Errorf(CodeInvalid, "body/name must not be longer than %d characters (got %d)", MaxContextNameLength, n)
	}
	if !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		return "", Errorf(CodeInvalid, "body/name must be valid text")
	}
	return name, nil
}

// ContextNameKey is the form in which context names are compared for uniqueness:
// trimmed and lower-cased (spec §2.8). "" means no name; unnamed contexts never clash.
func ContextNameKey(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}

// DuplicateContextNameError is the error for a context name already used in the
// project. It must not be retried: the official SDKs retry 409 by default (spec §1.5).
func DuplicateContextNameError(name string) *Error {
	return &Error{Code: CodeConflict, NoRetry: true,
		Message: fmt.Sprintf("A context named %q already exists in this project", name)}
}

// ContextKeys is what POST /v1/contexts and the deprecated PUT return besides the id
// (spec §2.9): the fields of Browserbase's discontinued user-data-dir upload.
type ContextKeys struct {
	// PublicKey is a PEM ("PUBLIC KEY", PKIX) RSA-2048 public key, fresh for every call.
	// Its private key is discarded: uploads are discontinued (uploadUrl is a sentinel),
	// so nothing will ever be encrypted to it (docs/COMPATIBILITY.md).
	PublicKey                string
	CipherAlgorithm          string
	InitializationVectorSize int
	UploadURL                string
}

// ContextUploadURL is the sentinel uploadUrl (spec §2.9: deprecated, non-functional).
const ContextUploadURL = "https://browserd.invalid/v1/contexts/upload-discontinued"

// ContextWriteBackStore records the context write-backs in progress (internal/profiles):
// a session on a persisted context writes its profile back after its browser stopped,
// after its end is already visible. A create on the context, on any node of a cluster,
// waits while a record of one lasts. Times are the store's clock.
type ContextWriteBackStore interface {
	// BeginContextWriteBack records that sessionID writes back to contextID, for at most
	// ttl: a node that dies meanwhile never ends its record, which then lapses.
	BeginContextWriteBack(ctx context.Context, contextID, sessionID string, ttl time.Duration) error
	// EndContextWriteBack removes the record; none is not an error.
	EndContextWriteBack(ctx context.Context, contextID, sessionID string) error
	// ContextWriteBacks counts the records of contextID that have not lapsed.
	ContextWriteBacks(ctx context.Context, contextID string) (int, error)
}
