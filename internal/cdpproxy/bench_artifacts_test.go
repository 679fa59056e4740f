package cdpproxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	bb "github.com/browserd/browserd"
	artsvc "github.com/browserd/browserd/internal/artifacts"
	"github.com/browserd/browserd/internal/fsblob"
	"github.com/browserd/browserd/internal/sqlite/sqlitetest"
)

// benchLogged measures echoes through the gateway without CDP logging ("plain"), with
// the relay's share of logging only (copies handed to a sink that drops them:
// "relay-only"), and with the real internal/artifacts queue and batch writer on SQLite
// ("logged"), whose cpu-ns/op includes decoding and storing each command and response
// in the background.
func benchLogged(b *testing.B, msg []byte) {
	ctx := context.Background()
	db := sqlitetest.Open(b)
	p, _ := sqlitetest.Project(b, db, 1000)
	now := time.Now().UTC().Truncate(time.Millisecond)
	s := &bb.Session{ID: bb.NewID(), ProjectID: p.ID, Status: bb.StatusRunning, CreatedAt: now, UpdatedAt: now,
		StartedAt: now, ExpiresAt: now.Add(time.Hour), Region: bb.RegionUSWest2, Timeout: 3600}
	if err := db.CreateSession(ctx, s, 1000); err != nil {
		b.Fatal(err)
	}
	blobs, err := fsblob.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	art, err := artsvc.New(artsvc.Config{Store: db, Sessions: db, Blobs: blobs, SpoolDir: b.TempDir(), LogSessionLimit: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	if err := art.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { art.Close() })
	run, err := art.Prepare(ctx, s, &bb.CreateSessionRequest{}, &bb.LaunchOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := run.Started(ctx, dirBrowser{dir: b.TempDir()}); err != nil { // no Agent: only the directory is used
		b.Fatal(err)
	}
	art.SetRuns(oneRun{s.ID, run})

	for _, bc := range []struct {
		name string
		cfg  Config
	}{{"plain", Config{}}, {"relay-only", Config{Artifacts: dropArtifacts{s.ID}}}, {"logged", Config{Artifacts: art}}} {
		h := newHarness(b, bc.cfg)
		h.g.attach = func(context.Context, bb.ConnectCredentials) (attached, error) {
			return attached{sessionID: s.ID, browserURL: h.cdp.URL(), att: newFakeAttachment()}, nil
		}
		b.Run(bc.name, func(b *testing.B) {
			c := dial(b, h.URL())
			buf := make([]byte, len(msg))
			echo(b, c, websocket.MessageText, msg, buf) // warm up
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				echo(b, c, websocket.MessageText, msg, buf)
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
	run.Stopped(ctx, nil, bb.StatusCompleted) // flush, so that the writer's work is inside the benchmark's process
	run.Ended(ctx)
	logs, err := db.SessionLogs(ctx, s.ID, 0, 1)
	if err != nil || len(logs) == 0 {
		b.Fatalf("no logs were written: %d, %v", len(logs), err)
	}
}

func BenchmarkLoggedRoundTrip(b *testing.B) {
	benchLogged(b, []byte(`{"id":12,"method":"Runtime.evaluate","params":{"expression":"1+1","returnByValue":true},"sessionId":"8F1C2B3D4E5F60718293A4B5C6D7E8F9"}`))
}

func BenchmarkLoggedLarge(b *testing.B) {
	benchLogged(b, []byte(`{"id":1,"result":{"data":"`+strings.Repeat("iVBORw0KGgo", 4<<20/11)+`"}}`))
}

// dropArtifacts logs every session and drops what it is given.
type dropArtifacts struct{ id string }

func (d dropArtifacts) Live(id string) (bb.LiveSession, bool) {
	return bb.LiveSession{Logs: true, LogPayloadLimit: 64 << 10}, id == d.id
}
func (dropArtifacts) RecordCDP(bb.CDPExchange)            {}
func (dropArtifacts) RecordTarget(string, string, string) {}

// dirBrowser is a browser of which the artifacts service uses only the directory.
type dirBrowser struct {
	bb.Browser // other methods are not called
	dir        string
}

func (d dirBrowser) Dir() string { return d.dir }

// oneRun is a Manager with one live session, as the artifacts service looks it up.
type oneRun struct {
	id  string
	run bb.PartRun
}

func (o oneRun) Run(id string, _ bb.SessionPart) bb.PartRun {
	if id != o.id {
		return nil
	}
	return o.run
}
