package browserd

import "time"

// Defaults for projects created without explicit values (docs/COMPATIBILITY.md).
const (
	DefaultProjectTimeout     = 300 // seconds, as observed on Browserbase
	DefaultProjectConcurrency = 25
)

// Project owns sessions, contexts and extensions and has a concurrency limit.
type Project struct {
	ID             string
	Name           string
	OwnerID        string
	DefaultTimeout int // seconds, 60..21600
	Concurrency    int // maximum PENDING+RUNNING sessions
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Validate checks a project's fields.
func (p *Project) Validate() error {
	switch {
	case p.Name == "":
		return Errorf(CodeInvalid, "project name must not be empty")
	case p.DefaultTimeout < MinTimeout || p.DefaultTimeout > MaxTimeout:
		return Errorf(CodeInvalid, "project default timeout must be between %d and %d seconds", MinTimeout, MaxTimeout)
	case p.Concurrency < 1:
		return Errorf(CodeInvalid, "project concurrency must be at least 1")
	}
	return nil
}

// CheckProject resolves the project of a request: the key's own, which a body's
// projectId must match (spec §1.2: 401 "Unauthorized Project ID"). It is exported for
// the services beside the Manager that take a projectId too (internal/profiles).
func CheckProject(keyProjectID, requested string) error {
	if requested != "" && requested != keyProjectID {
		return &Error{Code: CodeUnauthorized, Message: "Unauthorized Project ID", NoRetry: true}
	}
	return nil
}

// ProjectUsage is what a project has used: browser minutes (each session rounded up to
// whole minutes, at least one) and proxy bytes, over all time (docs/COMPATIBILITY.md).
type ProjectUsage struct {
	BrowserMinutes int64
	ProxyBytes     int64
}

// APIKey is a project's API key. Only the SHA-256 hash of the key is stored.
type APIKey struct {
	ID        string
	ProjectID string
	Name      string
	Hash      []byte // SHA-256 of the key
	CreatedAt time.Time
}
