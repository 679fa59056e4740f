package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	bb "github.com/browserd/browserd"
	"github.com/browserd/browserd/internal/artifacts"
	"github.com/browserd/browserd/internal/recorder"
)

// ArtifactsFlags configure session artifacts: logs, recordings, downloads, uploads.
type ArtifactsFlags struct {
	RecordSessions  bool          // recordSession's default
	LogEvents       bool          // the browser's events in the session logs
	Retention       time.Duration // 0 keeps artifacts forever
	UploadMaxMiB    int
	LogMaxMiB       int // per session
	LogPayloadKiB   int // per logged message
	RecordingMaxMiB int // per session
	RetentionCheck  time.Duration
}

func defaultArtifactsFlags() ArtifactsFlags {
	return ArtifactsFlags{RecordSessions: true, LogEvents: true, Retention: 30 * 24 * time.Hour, UploadMaxMiB: 100,
		LogMaxMiB: 32, LogPayloadKiB: 64, RecordingMaxMiB: 64, RetentionCheck: 10 * time.Minute}
}

// flags defines the flags of ArtifactsFlags.
func (a *ArtifactsFlags) flags(f flagTable) {
	f.boolean(&a.RecordSessions, "record-sessions", "record sessions with rrweb unless a create says recordSession: false (false: only when it says true)", false)
	f.boolean(&a.LogEvents, "log-browser-events", "put the browser's network, console, navigation, target and download events of every page in the session logs (sessions with logSession: false log nothing either way)", false)
	f.dur(&a.Retention, "artifact-retention", "delete a session's logs, recording, downloads and uploads this long after it ended; 0 keeps them")
	f.num(&a.UploadMaxMiB, "upload-max-size", "largest file POST /v1/sessions/{id}/uploads takes, MiB (larger: 413)")
	f.num(&a.LogMaxMiB, "log-max-size", "CDP logs (commands and browser events) kept per session, MiB; later ones are dropped after a marker entry")
	f.num(&a.LogPayloadKiB, "log-payload-max", "each logged CDP message is cut to this many KiB, with a marker")
	f.num(&a.RecordingMaxMiB, "recording-max-size", "rrweb recording kept per session, MiB")
}

func (a ArtifactsFlags) validate() []error {
	if a.Retention < 0 || a.UploadMaxMiB < 1 || a.LogMaxMiB < 1 || a.LogPayloadKiB < 1 || a.RecordingMaxMiB < 1 {
		return []error{errors.New("artifact-retention must not be negative; upload-max-size, log-max-size, log-payload-max and recording-max-size must be at least 1")}
	}
	return nil
}

// newArtifacts returns the session artifacts service, started: it has moved the
// downloads an earlier run left behind into blobs. It is one of the Manager's parts:
// SetRuns(mgr) once the Manager is built. Close it after the Manager.
func newArtifacts(ctx context.Context, cfg Config, st interface {
	bb.ArtifactStore
	bb.SessionStore
}, blobs bb.BlobStore, events bb.EventSink, logger *slog.Logger) (*artifacts.Service, error) {
	a := cfg.Artifacts
	art, err := artifacts.New(artifacts.Config{
		Store:             st,
		Sessions:          st,
		Blobs:             blobs,
		Agent:             recorder.New(recorder.Config{Logger: logger}),
		Logger:            logger,
		SpoolDir:          filepath.Join(cfg.DataDir, "spool"),
		RecordByDefault:   a.RecordSessions,
		LogPayloadLimit:   a.LogPayloadKiB << 10,
		LogBrowserEvents:  a.LogEvents,
		LogSessionLimit:   int64(a.LogMaxMiB) << 20,
		RecordingLimit:    int64(a.RecordingMaxMiB) << 20,
		UploadLimit:       int64(a.UploadMaxMiB) << 20,
		Retention:         a.Retention,
		RetentionInterval: a.RetentionCheck,
		Events:            events, // webhooks: sessions.downloads.completed
	})
	if err != nil {
		return nil, err
	}
	if err := art.Start(ctx); err != nil {
		return nil, err
	}
	return art, nil
}
