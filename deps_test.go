package browserd_test

import (
	"go/build"
	"maps"
	"path/filepath"
	"slices"
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

// TestInternalImports keeps the import rule of docs/ARCHITECTURE.md: an internal package
// imports the root and leaf libraries, never another internal package; only the programs
// (internal/server wires the parts, internal/bench runs the server beside bare Chromium,
// cmd/browserd dispatches) and test helpers (…test packages) import more.
func TestInternalImports(t *testing.T) {
	const module = "github.com/browserd/browserd/"
	leaves := map[string]bool{"internal/cdp": true, "internal/client": true}
	programs := map[string]bool{"internal/server": true, "internal/bench": true}
	dirs, err := filepath.Glob("internal/*")
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := filepath.Glob("internal/*/*")
	dirs = append(dirs, sub...)
	checked := 0
	for _, dir := range dirs {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			continue // not a Go package (testdata, …)
		}
		checked++
		if programs[dir] || strings.HasSuffix(pkg.Name, "test") {
			continue
		}
		for _, imp := range pkg.Imports {
			rel, ok := strings.CutPrefix(imp, module)
			if !ok || !strings.HasPrefix(rel, "internal/") || leaves[rel] {
				continue
			}
			t.Errorf("%s imports %s: internal packages import the root and leaf libraries (%v) only", dir, rel, slices.Sorted(maps.Keys(leaves)))
		}
		if leaves[dir] {
			for _, imp := range pkg.Imports {
				if strings.HasPrefix(imp, module) {
					t.Errorf("leaf %s imports %s: a leaf imports no package of this module", dir, imp)
				}
			}
		}
	}
	if checked < 15 {
		t.Fatalf("checked %d packages; the glob found too few", checked)
	}
}
