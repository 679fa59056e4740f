package browserd

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeUploadName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "photo.png", want: "photo.png"},
		{in: "../../etc/passwd", want: "passwd"},
		{in: `C:\Users\me\doc.txt`, want: "doc.txt"},
		{in: "  spaced name.txt ", want: "spaced name.txt"},
		{in: "tab\there", want: "tab_here"},
		{in: "nul\x00byte", want: "nul_byte"},
		{in: "bad\xffutf8", want: "bad_utf8"},
		{in: "rtl\u202egnp.exe", want: "rtl_gnp.exe"},
		{in: "ünïcødé.txt", want: "ünïcødé.txt"},
		{in: ".hidden", want: ".hidden"},
		{in: "", wantErr: true},
		{in: ".", wantErr: true},
		{in: "..", wantErr: true},
		{in: "dir/", wantErr: true},
		{in: "   ", wantErr: true},
		{in: strings.Repeat("a", 256), wantErr: true},
	}
	for _, tt := range tests {
		got, err := SanitizeUploadName(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("SanitizeUploadName(%q) = %q, %v; want %q, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && CodeOf(err) != CodeInvalid {
			t.Errorf("SanitizeUploadName(%q) error code %s; want invalid", tt.in, CodeOf(err))
		}
	}
}

// FuzzSanitizeUploadName: any name gives a CodeInvalid error or a name that is one
// clean path element, and sanitising is idempotent.
func FuzzSanitizeUploadName(f *testing.F) {
	for _, s := range []string{"a.txt", "../x", `..\..\y`, "\x00", ".", "\u202e", "a/b/", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := SanitizeUploadName(in)
		if err != nil {
			if CodeOf(err) != CodeInvalid {
				t.Fatalf("error %v is not CodeInvalid", err)
			}
			return
		}
		if got == "" || got == "." || got == ".." || len(got) > 255 || !utf8.ValidString(got) ||
			strings.ContainsAny(got, "/\\\x00") || !ValidBlobKey("sessions/x/uploads/"+got) {
			t.Fatalf("SanitizeUploadName(%q) = %q: not a clean file name", in, got)
		}
		if again, err := SanitizeUploadName(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", in, got, again, err)
		}
	})
}

func TestValidBlobKey(t *testing.T) {
	for key, want := range map[string]bool{
		"a": true, "sessions/x/downloads/r-1.pdf": true, "a/.b": true,
		"": false, "/a": false, "a/": false, "a//b": false, "a/../b": false, "./a": false, "..": false,
		`a\b`: false, "a\x00": false, strings.Repeat("a", 1025): false,
	} {
		if got := ValidBlobKey(key); got != want {
			t.Errorf("ValidBlobKey(%q) = %v; want %v", key, got, want)
		}
	}
}
