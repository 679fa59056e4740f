package profiles

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	bb "github.com/browserd/browserd"
)

// maxManifestSize bounds manifest.json.
const maxManifestSize = 1 << 20

// CheckExtensionZip validates an uploaded extension: a zip of at most bb.MaxExtensionSize
// bytes whose entries are regular files and directories with clean relative paths (no
// zip-slip, no symlinks), at most bb.MaxExtensionFiles entries and bb.MaxExtensionUnpacked
// bytes unpacked, every entry readable with a correct checksum, and a manifest.json at
// the root that is a JSON object with manifest_version, name and version. Size limits
// are bb.CodeTooLarge errors, everything else bb.CodeInvalid.
func CheckExtensionZip(r io.ReaderAt, size int64) (bb.ExtensionManifest, error) {
	var m bb.ExtensionManifest
	err := walkExtensionZip(r, size, func(f *zip.File, name string) error {
		rc, err := f.Open()
		if err != nil {
			return zipEntryError(name, err)
		}
		defer rc.Close()
		if name == "manifest.json" {
			m, err = readManifest(rc)
			return err
		}
		// archive/zip fails a read past the declared size and checks the CRC at EOF,
		// so the declared sizes (bounded by the walk) are the real ones.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			return zipEntryError(name, err)
		}
		return nil
	})
	return m, err
}

// unpackExtension writes the entries of an extension zip into dir, which must exist
// and be empty. It applies the checks of CheckExtensionZip again.
func unpackExtension(r io.ReaderAt, size int64, dir string) error {
	return walkExtensionZip(r, size, func(f *zip.File, name string) error {
		target := filepath.Join(dir, filepath.FromSlash(name))
		if f.Mode().IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return zipEntryError(name, err)
		}
		defer rc.Close()
		// O_EXCL: never write through something already there (such as a symlink).
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, rc); err != nil {
			out.Close() // the copy error is the one to report
			return zipEntryError(name, err)
		}
		return out.Close()
	})
}

// walkExtensionZip opens the zip, checks its structure and calls fn for every entry
// with its cleaned name (without a directory's trailing slash). It fails when there is
// no manifest.json at the root.
func walkExtensionZip(r io.ReaderAt, size int64, fn func(f *zip.File, name string) error) error {
	if size > bb.MaxExtensionSize {
		return bb.Errorf(bb.CodeTooLarge, "the extension must not be larger than %d bytes (got %d)", bb.MaxExtensionSize, size)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		// ErrInsecurePath (GODEBUG=zipinsecurepath=0) comes with a usable reader; the
		// names are checked below either way.
		return &bb.Error{Code: bb.CodeInvalid, Message: "the file is not a valid zip archive", Err: err}
	}
	if len(zr.File) > bb.MaxExtensionFiles {
		return bb.Errorf(bb.CodeInvalid, "the extension zip has %d entries; at most %d are allowed", len(zr.File), bb.MaxExtensionFiles)
	}
	var total uint64
	files := make(map[string]bool, len(zr.File)) // name → is a directory
	manifest := false
	for _, f := range zr.File {
		name, err := zipEntryName(f)
		if err != nil {
			return err
		}
		dir := f.Mode().IsDir()
		if _, dup := files[name]; dup {
			return bb.Errorf(bb.CodeInvalid, "the extension zip has the entry %q twice", name)
		}
		files[name] = dir
		if !dir {
			if f.Method != zip.Store && f.Method != zip.Deflate {
				return bb.Errorf(bb.CodeInvalid, "the extension zip entry %q uses an unsupported compression method (%d)", name, f.Method)
			}
			total += f.UncompressedSize64
			if total > bb.MaxExtensionUnpacked || f.UncompressedSize64 > bb.MaxExtensionUnpacked {
				return bb.Errorf(bb.CodeTooLarge, "the extension must not unpack to more than %d bytes", bb.MaxExtensionUnpacked)
			}
			manifest = manifest || name == "manifest.json"
		}
	}
	// A file must not also be the parent directory of another entry.
	for name := range files {
		for p := parentDir(name); p != ""; p = parentDir(p) {
			if isDir, ok := files[p]; ok && !isDir {
				return bb.Errorf(bb.CodeInvalid, "the extension zip entry %q is inside the file %q", name, p)
			}
		}
	}
	if !manifest {
		return bb.Errorf(bb.CodeInvalid, "the extension zip must have a manifest.json at its root")
	}
	for _, f := range zr.File {
		name, _ := zipEntryName(f) // checked above
		if err := fn(f, name); err != nil {
			return err
		}
	}
	return nil
}

// zipEntryName returns an entry's name after checking that it is a regular file or a
// directory with a clean, relative slash path that stays inside the extension.
func zipEntryName(f *zip.File) (string, error) {
	name := f.Name
	mode := f.Mode()
	if mode&fs.ModeSymlink != 0 {
		return "", bb.Errorf(bb.CodeInvalid, "the extension zip entry %q is a symbolic link; links are not allowed", safeName(name))
	}
	if mode&fs.ModeType&^fs.ModeDir != 0 {
		return "", bb.Errorf(bb.CodeInvalid, "the extension zip entry %q is not a regular file or directory", safeName(name))
	}
	trimmed := name
	if mode.IsDir() {
		trimmed = strings.TrimSuffix(name, "/")
	} else if strings.HasSuffix(name, "/") {
		return "", bb.Errorf(bb.CodeInvalid, "the extension zip entry %q is not a regular file or directory", safeName(name))
	}
	if !cleanRelativePath(trimmed) {
		return "", bb.Errorf(bb.CodeInvalid, "the extension zip entry %q has an unsafe path (absolute, \"..\", or not clean)", safeName(name))
	}
	return trimmed, nil
}

// cleanRelativePath reports whether p is a non-empty relative slash path of plain
// segments: no "", ".", ".." segment, no backslash, colon or control character, valid
// UTF-8, at most 1024 bytes.
func cleanRelativePath(p string) bool {
	if p == "" || len(p) > 1024 || !utf8.ValidString(p) {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\\' || r == ':' })
}

func parentDir(name string) string {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ""
	}
	return name[:i]
}

// safeName shortens a zip entry name for an error message.
func safeName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	if len(name) > 200 {
		name = name[:200] + "…"
	}
	return name
}

func zipEntryError(name string, err error) error {
	return &bb.Error{Code: bb.CodeInvalid, Message: fmt.Sprintf("the extension zip entry %q can't be read (corrupt archive)", safeName(name)), Err: err}
}

// readManifest reads and checks manifest.json.
func readManifest(r io.Reader) (bb.ExtensionManifest, error) {
	var m bb.ExtensionManifest
	b, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return m, zipEntryError("manifest.json", err)
	}
	if len(b) > maxManifestSize {
		return m, bb.Errorf(bb.CodeInvalid, "manifest.json must not be larger than %d bytes", maxManifestSize)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // Chromium accepts a UTF-8 byte order mark
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return m, bb.Errorf(bb.CodeInvalid, "manifest.json must be a JSON object")
	}
	if err := json.Unmarshal(fields["manifest_version"], &m.ManifestVersion); err != nil || m.ManifestVersion <= 0 {
		return m, bb.Errorf(bb.CodeInvalid, "manifest.json must have a positive integer manifest_version")
	}
	if err := json.Unmarshal(fields["name"], &m.Name); err != nil || strings.TrimSpace(m.Name) == "" {
		return m, bb.Errorf(bb.CodeInvalid, "manifest.json must have a name")
	}
	if err := json.Unmarshal(fields["version"], &m.Version); err != nil || strings.TrimSpace(m.Version) == "" {
		return m, bb.Errorf(bb.CodeInvalid, "manifest.json must have a version")
	}
	return m, nil
}
