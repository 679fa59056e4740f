package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestExitCodes checks the exit codes scripts rely on: 2 for a usage error of any
// subcommand, 0 for -h.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{args: nil, want: 2},
		{args: []string{"frobnicate"}, want: 2},
		{args: []string{"version"}, want: 0},
		{args: []string{"serve", "--max-sessions", "x"}, want: 2},
		{args: []string{"serve", "-h"}, want: 0},
		{args: []string{"admin"}, want: 2},
		{args: []string{"bench", "--rounds", "x"}, want: 2},
		{args: []string{"bench", "-h"}, want: 0},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := run(t.Context(), tt.args, func(string) string { return "" }, &out, &errOut); got != tt.want {
				t.Errorf("browserd %s: exit code %d; want %d (stderr %q)", strings.Join(tt.args, " "), got, tt.want, errOut.String())
			}
		})
	}
}
