package browserd_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestStdlibOnly keeps the root package free of dependencies: the domain is imported by
// every other package and must import none of them (CONVENTIONS.md, Layout).
func TestStdlibOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("root package imports %q; only the standard library is allowed", imp)
		}
	}
}
