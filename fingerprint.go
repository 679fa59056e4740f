package browserd

import (
	"encoding/json"
	"strings"
)

// Limits of browserSettings.fingerprint (spec §3.1). Its locales become Chromium's
// --accept-lang flag and CDP locale overrides, so they are held to the shape of a BCP 47
// language tag: a NUL or a 128 KiB string would make the launch itself fail
// (security-review F6).
const (
	MaxLocales      = 10
	MaxLocaleLength = 35 // bytes: the longest well-formed tags RFC 5646 §4.4.1 asks to support
	// maxFingerprintList bounds browsers, devices and operatingSystems.
	maxFingerprintList = 16
	// maxFingerprintName bounds one of their entries, in bytes.
	maxFingerprintName = 32
	// maxDomainLength is the longest DNS name (RFC 1035), for allowedDomains.
	maxDomainLength = 253
)

// ValidLocale reports whether s has the shape of a BCP 47 language tag (RFC 5646): a
// language of 2–8 letters, then subtags of 1–8 letters or digits separated by "-" (or
// "_", as POSIX locales and some clients write them), at most MaxLocaleLength bytes. It
// checks the shape only, not the IANA registry.
func ValidLocale(s string) bool {
	if len(s) == 0 || len(s) > MaxLocaleLength {
		return false
	}
	for i, sub := range strings.Split(strings.ReplaceAll(s, "_", "-"), "-") {
		if len(sub) == 0 || len(sub) > 8 || (i == 0 && len(sub) < 2) {
			return false
		}
		for _, c := range []byte(sub) {
			letter := c|0x20 >= 'a' && c|0x20 <= 'z'
			if !letter && (i == 0 || c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// validateFingerprint checks browserSettings.fingerprint the way EmulationFor reads it:
// decoded into the same struct (so that key case and duplicate keys mean the same in
// both), with locales of BCP 47 shape and bounded lists. Unknown fields are kept and
// ignored. Errors name the field (body/browserSettings/fingerprint/locales/0).
func validateFingerprint(v json.RawMessage) error {
	const name = "body/browserSettings/fingerprint"
	if _, err := decodeObject(v, name); err != nil {
		return err
	}
	var fp legacyFingerprint
	if err := decodeField(v, "browserSettings/fingerprint", "an object", &fp); err != nil {
		return err
	}
	for _, l := range []struct {
		name, example string
		items         []string
	}{{"browsers", "chrome", fp.Browsers}, {"devices", "desktop", fp.Devices}, {"operatingSystems", "windows", fp.OperatingSystems}} {
		if len(l.items) > maxFingerprintList {
			return Errorf(CodeInvalid, "%s/%s must not have more than %d entries", name, l.name, maxFingerprintList)
		}
		for i, it := range l.items {
			if it == "" || len(it) > maxFingerprintName || !printableASCII(it) {
				return Errorf(CodeInvalid, "%s/%s/%d must be a name such as %q", name, l.name, i, l.example)
			}
		}
	}
	if len(fp.Locales) > MaxLocales {
		return Errorf(CodeInvalid, "%s/locales must not have more than %d entries", name, MaxLocales)
	}
	for i, l := range fp.Locales {
		if !ValidLocale(strings.TrimSpace(l)) {
			return Errorf(CodeInvalid, "%s/locales/%d must be a language tag such as \"en-US\" (letters, digits and hyphens, at most %d bytes)",
				name, i, MaxLocaleLength)
		}
	}
	if hv := fp.HTTPVersion; len(hv) > 0 && !isNull(hv) {
		switch strings.TrimSpace(string(hv)) {
		case "1", "2", `"1"`, `"2"`:
		default:
			return Errorf(CodeInvalid, "%s/httpVersion must be 1 or 2", name)
		}
	}
	if sc := fp.Screen; sc != nil {
		for _, side := range []struct {
			name string
			n    int
		}{{"maxHeight", sc.MaxHeight}, {"maxWidth", sc.MaxWidth}, {"minHeight", sc.MinHeight}, {"minWidth", sc.MinWidth}} {
			if side.n < 0 || side.n > maxScreenSide {
				return Errorf(CodeInvalid, "%s/screen/%s must be an integer from 0 to %d", name, side.name, maxScreenSide)
			}
		}
	}
	return nil
}

// maxScreenSide bounds fingerprint.screen's sides; EmulationFor clamps them to
// MaxViewportSide.
const maxScreenSide = 100_000

// printableASCII reports whether s is printable ASCII without spaces.
func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validateAllowedDomain checks one browserSettings.allowedDomains entry: a host name
// (optionally "*." or "." in front), printable, at most 253 bytes.
func validateAllowedDomain(i int, d string) error {
	d = strings.TrimSpace(d)
	if d == "" {
		return Errorf(CodeInvalid, "body/browserSettings/allowedDomains/%d must be a non-empty domain", i)
	}
	if len(d) > maxDomainLength+2 || !printableASCII(d) && !printableUnicode(d) {
		return Errorf(CodeInvalid, "body/browserSettings/allowedDomains/%d must be a domain name of at most %d bytes", i, maxDomainLength)
	}
	return nil
}

// printableUnicode reports whether s has no control characters, spaces or invalid
// UTF-8 (an internationalised domain name).
func printableUnicode(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// maxAllowedDomains bounds browserSettings.allowedDomains.
const maxAllowedDomains = 1000

func validateAllowedDomains(ds []string) error {
	if len(ds) > maxAllowedDomains {
		return Errorf(CodeInvalid, "body/browserSettings/allowedDomains must not have more than %d entries", maxAllowedDomains)
	}
	for i, d := range ds {
		if err := validateAllowedDomain(i, d); err != nil {
			return err
		}
	}
	return nil
}
