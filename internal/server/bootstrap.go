package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	bb "github.com/browserd/browserd"
)

// Names of server-wide settings kept in the store.
const (
	settingOwnerID        = "owner_id"
	settingDefaultProject = "default_project_id"
	settingSigningSecret  = "signing_secret"
)

// bootstrap makes sure the default project exists and has an API key. With apiKey set,
// that key is registered for the default project (if it is not known yet). Without it,
// a project that has no key gets a random one, printed to out once: only its hash is kept.
func bootstrap(ctx context.Context, st bb.Store, apiKey string, out io.Writer) (*bb.Project, error) {
	owner, err := st.SettingOrInit(ctx, settingOwnerID, []byte(bb.NewID()))
	if err != nil {
		return nil, fmt.Errorf("owner id: %w", err)
	}
	pid, err := st.SettingOrInit(ctx, settingDefaultProject, []byte(bb.NewID()))
	if err != nil {
		return nil, fmt.Errorf("default project id: %w", err)
	}
	p, err := st.Project(ctx, string(pid))
	if bb.CodeOf(err) == bb.CodeNotFound {
		now := time.Now().UTC().Truncate(time.Millisecond)
		p = &bb.Project{ID: string(pid), Name: "default", OwnerID: string(owner),
			DefaultTimeout: bb.DefaultProjectTimeout, Concurrency: bb.DefaultProjectConcurrency,
			CreatedAt: now, UpdatedAt: now}
		if err := st.CreateProject(ctx, p); err != nil {
			return nil, fmt.Errorf("create default project: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("load default project: %w", err)
	}

	if apiKey != "" {
		if _, err := st.APIKeyByHash(ctx, bb.HashAPIKey(apiKey)); bb.CodeOf(err) == bb.CodeNotFound {
			if _, err := createKey(ctx, st, p.ID, "from BROWSERD_API_KEY", apiKey); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("look up api key: %w", err)
		}
		return p, nil
	}
	keys, err := st.APIKeys(ctx, p.ID)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	if len(keys) > 0 {
		return p, nil
	}
	key, err := createKey(ctx, st, p.ID, "generated on first start", "")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\nCreated the default project and its API key. The key is shown only this once; keep it:\n\n"+
		"  BROWSERBASE_API_KEY=%s\n  BROWSERBASE_PROJECT_ID=%s\n\n", key, p.ID)
	return p, nil
}

// createKey stores a key (raw, or a new random one when raw is "") and returns it.
func createKey(ctx context.Context, st bb.KeyStore, projectID, name, raw string) (string, error) {
	if raw == "" {
		raw = bb.NewAPIKey()
	}
	k := &bb.APIKey{ID: bb.NewID(), ProjectID: projectID, Name: name, Hash: bb.HashAPIKey(raw),
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		return "", fmt.Errorf("create api key: %w", err)
	}
	return raw, nil
}

// signingSecret returns the server's signing secret, created on first use.
func signingSecret(ctx context.Context, st bb.KeyStore) ([]byte, error) {
	init := make([]byte, 32)
	_, _ = rand.Read(init) // never fails (crypto/rand aborts instead)
	return st.SettingOrInit(ctx, settingSigningSecret, init)
}

// nodeID returns this node's id, kept in <data-dir>/node-id so it survives restarts
// (reconciliation after a crash looks for the sessions this node owned).
func nodeID(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	b, err := os.ReadFile(path)
	if err == nil && bb.ValidID(strings.TrimSpace(string(b))) {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	id := bb.NewID()
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}
