package main

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"

	"github.com/browserd/browserd/internal/server/servertest"
)

// The CLI's tests talk to a real server (internal/server/servertest).
const testAPIKey = servertest.APIKey

func defaultEnv() map[string]string { return servertest.DefaultEnv() }

func startServer(t *testing.T, dataDir string, env map[string]string, args ...string) *servertest.Server {
	t.Helper()
	return servertest.Start(t, dataDir, env, args...)
}

// extensionZip returns a minimal MV3 extension.
func extensionZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, `{"manifest_version":3,"name":"openapi test","version":"1.0"}`)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
