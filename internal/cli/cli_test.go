package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/browserd/browserd/internal/client"
)

func TestExitCode(t *testing.T) {
	for status, want := range map[int]int{400: ExitRejected, 401: ExitAuth, 403: ExitAuth, 404: ExitNotFound,
		409: ExitRejected, 410: ExitNotFound, 413: ExitRejected, 415: ExitRejected, 422: ExitRejected,
		429: ExitLimit, 500: ExitError, 501: ExitError, 503: ExitLimit} {
		if got := exitCode(&client.Error{Status: status}); got != want {
			t.Errorf("exitCode(HTTP %d) = %d; want %d", status, got, want)
		}
	}
	if got := exitCode(usageError{os.ErrInvalid}); got != ExitUsage {
		t.Errorf("exitCode(usageError) = %d", got)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 150 << 20: "150.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	cl := &cli{progressTo: &buf}
	p := cl.progress("uploading", 2048)
	p.Write(make([]byte, 1024)) // the first write shows at once
	p.Write(make([]byte, 1024)) // within 200 ms of it: not shown
	p.done()
	want := "\ruploading 1.0 KiB of 2.0 KiB (50%)  \ruploading 2.0 KiB of 2.0 KiB (100%)  \n"
	if buf.String() != want {
		t.Errorf("progress output %q; want %q", buf.String(), want)
	}
	buf.Reset()
	p = cl.progress("downloading", -1)
	p.Write(make([]byte, 10))
	p.done()
	if !strings.HasSuffix(buf.String(), "\rdownloading 10 B  \n") {
		t.Errorf("progress of an unknown total: %q", buf.String())
	}
	silent := (&cli{}).progress("uploading", 10)
	silent.Write(make([]byte, 10))
	silent.done() // no writer: nothing to see, no panic
}
