package browserd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Emulation is what a session's browser presents about itself and where its pages may
// navigate, derived from browserSettings (spec §3.1). Chromium flags carry what they can
// (LaunchArgs); the rest is applied over CDP to every page by an Emulator.
type Emulation struct {
	// Profile is the identity to present; nil keeps Chromium's own.
	Profile *Profile
	// Stealth hides automation markers: navigator.webdriver is false.
	Stealth bool
	// AllowedDomains restricts main-frame navigations to these domains and their
	// subdomains; empty allows every domain. Lower-case, without leading dots.
	AllowedDomains []string
	// IgnoreCertificateErrors makes the browser accept any TLS certificate.
	IgnoreCertificateErrors bool
	// Blocked, when set, is called with the URL of each main-frame navigation that
	// AllowedDomains blocked (the session's sessions.navigations.blocked event). It is
	// called on the Emulator's read loop and must not block.
	Blocked func(url string)
}

// NeedsAgent reports whether the browser needs a CDP agent (an Emulator) to apply e.
func (e Emulation) NeedsAgent() bool { return e.Profile != nil || len(e.AllowedDomains) > 0 }

// LaunchArgs returns the Chromium flags for e. version is Chromium's full version
// ("156.0.8078.108"); when "" the user agent is left to the Emulator.
func (e Emulation) LaunchArgs(version string) []string {
	var args []string
	if e.IgnoreCertificateErrors {
		args = append(args, "--ignore-certificate-errors")
	}
	if e.Stealth || e.Profile != nil {
		// Without it navigator.webdriver is true in every page of a browser under CDP.
		args = append(args, "--disable-blink-features=AutomationControlled")
	}
	if p := e.Profile; p != nil {
		if version != "" {
			args = append(args, "--user-agent="+p.UserAgent(version))
		}
		args = append(args, "--accept-lang="+strings.Join(p.Languages, ","))
		args = append(args, fmt.Sprintf("--screen-info={%dx%d}", p.Screen.Width, p.Screen.Height))
		if p.HTTP1 {
			args = append(args, "--disable-http2")
		}
	}
	return args
}

// DomainAllowed reports whether a main-frame navigation to host is allowed: host is one
// of the allowed domains or a subdomain of one (example.com allows a.b.example.com, not
// notexample.com).
func (e Emulation) DomainAllowed(host string) bool {
	if len(e.AllowedDomains) == 0 {
		return true
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, d := range e.AllowedDomains {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// Device forms of a Profile.
const (
	FormDesktop = "desktop"
	FormMobile  = "mobile"
	FormTablet  = "tablet"
)

// Profile is a browser identity: the user agent, client hints, platform, languages and
// screen it reports, consistent with each other.
type Profile struct {
	OS   string // windows, mac, linux or android
	Form string // FormDesktop, FormMobile or FormTablet
	// Edge presents Microsoft Edge instead of Google Chrome (same engine).
	Edge bool
	// Languages are navigator.languages, the first being the locale.
	Languages []string
	// Screen is the screen size reported to pages.
	Screen Viewport
	// Viewport is the layout viewport of a mobile or tablet page (device emulation);
	// desktop pages keep the window's.
	Viewport Viewport
	// HTTP1 turns HTTP/2 off (fingerprint httpVersion "1").
	HTTP1 bool
}

// Touch reports whether pages see a touch screen.
func (p *Profile) Touch() bool { return p.Form != FormDesktop }

// Mobile reports whether the profile is a phone (client hint Sec-CH-UA-Mobile).
func (p *Profile) Mobile() bool { return p.Form == FormMobile }

// Locale is the profile's locale (Intl, Accept-Language's first entry).
func (p *Profile) Locale() string { return p.Languages[0] }

// Platform is navigator.platform.
func (p *Profile) Platform() string {
	switch p.OS {
	case "windows":
		return "Win32"
	case "mac":
		return "MacIntel"
	case "android":
		return "Linux armv81"
	}
	return "Linux x86_64"
}

// AcceptLanguage is the profile's languages as CDP's setUserAgentOverride takes them;
// Chromium adds the q-values of the Accept-Language header ("de-DE,de;q=0.9").
func (p *Profile) AcceptLanguage() string { return strings.Join(p.Languages, ",") }

func majorVersion(version string) string {
	major, _, _ := strings.Cut(version, ".")
	return major
}

// UserAgent is the user agent string, in Chrome's reduced form (minor version zeros).
func (p *Profile) UserAgent(version string) string {
	v := majorVersion(version) + ".0.0.0"
	var system, mobile string
	switch p.OS {
	case "windows":
		system = "Windows NT 10.0; Win64; x64"
	case "mac":
		system = "Macintosh; Intel Mac OS X 10_15_7"
	case "android":
		system = "Linux; Android 10; K"
		if p.Form == FormMobile {
			mobile = "Mobile "
		}
	default:
		system = "X11; Linux x86_64"
	}
	ua := "Mozilla/5.0 (" + system + ") AppleWebKit/537.36 (KHTML, like Gecko) Chrome/" + v + " " + mobile + "Safari/537.36"
	if p.Edge {
		ua += " Edg/" + v
	}
	return ua
}

// UserAgentBrand is one entry of the client hints' brand list.
type UserAgentBrand struct {
	Brand   string `json:"brand"`
	Version string `json:"version"`
}

// UserAgentMetadata are the user agent client hints (CDP Emulation.UserAgentMetadata).
type UserAgentMetadata struct {
	Brands          []UserAgentBrand `json:"brands"`
	FullVersionList []UserAgentBrand `json:"fullVersionList"`
	Platform        string           `json:"platform"`
	PlatformVersion string           `json:"platformVersion"`
	Architecture    string           `json:"architecture"`
	Model           string           `json:"model"`
	Mobile          bool             `json:"mobile"`
	Bitness         string           `json:"bitness"`
	Wow64           bool             `json:"wow64"`
}

// Metadata returns the client hints for the profile; version is Chromium's full version.
func (p *Profile) Metadata(version string) UserAgentMetadata {
	major := majorVersion(version)
	product := "Google Chrome"
	if p.Edge {
		product = "Microsoft Edge"
	}
	m := UserAgentMetadata{
		Brands: []UserAgentBrand{
			{Brand: "Chromium", Version: major}, {Brand: product, Version: major}, {Brand: "Not_A Brand", Version: "24"},
		},
		FullVersionList: []UserAgentBrand{
			{Brand: "Chromium", Version: version}, {Brand: product, Version: version}, {Brand: "Not_A Brand", Version: "24.0.0.0"},
		},
		Mobile:  p.Mobile(),
		Bitness: "64",
	}
	switch p.OS {
	case "windows":
		m.Platform, m.PlatformVersion, m.Architecture = "Windows", "15.0.0", "x86"
	case "mac":
		m.Platform, m.PlatformVersion, m.Architecture = "macOS", "14.6.1", "arm"
	case "android":
		m.Platform, m.PlatformVersion, m.Architecture, m.Bitness = "Android", "14.0.0", "", ""
		m.Model = "Pixel 8"
		if p.Form == FormTablet {
			m.Model = "Pixel Tablet"
		}
	default:
		m.Platform, m.PlatformVersion, m.Architecture = "Linux", "6.8.0", "x86"
	}
	return m
}

// legacyFingerprint is browserSettings.fingerprint of SDK ≤2.6 (spec §3.1).
type legacyFingerprint struct {
	Browsers         []string        `json:"browsers"`
	Devices          []string        `json:"devices"`
	HTTPVersion      json.RawMessage `json:"httpVersion"`
	Locales          []string        `json:"locales"`
	OperatingSystems []string        `json:"operatingSystems"`
	Screen           *struct {
		MaxHeight int `json:"maxHeight"`
		MaxWidth  int `json:"maxWidth"`
		MinHeight int `json:"minHeight"`
		MinWidth  int `json:"minWidth"`
	} `json:"screen"`
}

// EmulationFor derives a session's Emulation from its browserSettings; viewport is the
// window's viewport, given tells whether the request set one (docs/COMPATIBILITY.md,
// "Browser settings").
func EmulationFor(bs BrowserSettings, viewport Viewport, given bool) Emulation {
	e := Emulation{
		Stealth:                 bs.AdvancedStealth || bs.Verified,
		IgnoreCertificateErrors: bs.IgnoreCertificateErrors,
	}
	for _, d := range bs.AllowedDomains {
		d = strings.TrimSuffix(strings.TrimLeft(strings.ToLower(strings.TrimSpace(d)), "*."), ".")
		if d != "" && !slices.Contains(e.AllowedDomains, d) {
			e.AllowedDomains = append(e.AllowedDomains, d)
		}
	}
	var fp legacyFingerprint
	hasFP := len(bs.Fingerprint) > 0 && !isNull(bs.Fingerprint) && json.Unmarshal(bs.Fingerprint, &fp) == nil
	if bs.OS == "" && !hasFP && !e.Stealth {
		return e
	}
	p := &Profile{OS: "linux", Form: FormDesktop}
	switch bs.OS {
	case "windows", "mac", "linux":
		p.OS = bs.OS
	case "mobile", "tablet":
		p.OS, p.Form = "android", bs.OS
	case "":
		mobileOnly := len(fp.Devices) > 0 && !slices.Contains(fp.Devices, "desktop")
	first:
		for _, o := range fp.OperatingSystems {
			switch o {
			case "windows", "linux":
				p.OS = o
			case "macos":
				p.OS = "mac"
			case "android", "ios": // iOS cannot be presented by Chromium: a phone it is
				p.OS, p.Form = "android", FormMobile
			default:
				continue
			}
			break first
		}
		if mobileOnly && p.OS != "android" {
			p.OS, p.Form = "android", FormMobile
		}
	}
	p.Edge = slices.Contains(fp.Browsers, "edge") && !slices.Contains(fp.Browsers, "chrome")
	for _, l := range fp.Locales {
		// DecodeCreateSessionRequest refuses bad locales; this keeps any other caller's
		// off Chromium's command line too (security-review F6).
		if l = strings.TrimSpace(l); ValidLocale(l) && len(p.Languages) < MaxLocales && !slices.Contains(p.Languages, l) {
			p.Languages = append(p.Languages, l)
		}
	}
	if len(p.Languages) == 0 {
		p.Languages = []string{"en-US"}
	}
	if base, _, ok := strings.Cut(p.Languages[0], "-"); ok && !slices.Contains(p.Languages, base) {
		p.Languages = append(p.Languages, base)
	}
	p.HTTP1 = strings.Trim(string(fp.HTTPVersion), `" `) == "1"

	switch p.Form {
	case FormMobile, FormTablet:
		p.Viewport = Viewport{Width: 412, Height: 915}
		if p.Form == FormTablet {
			p.Viewport = Viewport{Width: 800, Height: 1280}
		}
		if given {
			p.Viewport = viewport
		}
		p.Screen = p.Viewport
	default:
		p.Screen = Viewport{Width: max(1920, viewport.Width), Height: max(1080, viewport.Height)}
	}
	if s := fp.Screen; s != nil {
		p.Screen.Width = clampSide(p.Screen.Width, s.MinWidth, s.MaxWidth)
		p.Screen.Height = clampSide(p.Screen.Height, s.MinHeight, s.MaxHeight)
	}
	e.Profile = p
	return e
}

func clampSide(v, lo, hi int) int {
	if hi > 0 && v > hi {
		v = hi
	}
	if lo > 0 && v < lo {
		v = lo
	}
	return min(max(v, 1), MaxViewportSide)
}
