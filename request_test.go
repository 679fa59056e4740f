package browserd_test

import (
	"encoding/json"
	"strings"
	"testing"

	bb "github.com/browserd/browserd"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func ptr[T any](v T) *T { return &v }

func TestDecodeCreateSessionRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want bb.CreateSessionRequest
	}{
		{
			name: "empty body",
			body: "",
			want: bb.CreateSessionRequest{Region: bb.RegionUSWest2, Raw: json.RawMessage(`{}`)},
		},
		{
			name: "white space body",
			body: " \n\t",
			want: bb.CreateSessionRequest{Region: bb.RegionUSWest2, Raw: json.RawMessage(`{}`)},
		},
		{
			name: "empty object",
			body: "{}",
			want: bb.CreateSessionRequest{Region: bb.RegionUSWest2, Raw: json.RawMessage(`{}`)},
		},
		{
			name: "pretty-printed like the Node SDK",
			body: "{\n  \"projectId\": \"p1\",\n  \"keepAlive\": true\n}",
			want: bb.CreateSessionRequest{
				ProjectID: "p1", KeepAlive: true, Region: bb.RegionUSWest2,
				Raw: json.RawMessage(`{"projectId":"p1","keepAlive":true}`),
			},
		},
		{
			name: "top-level fields",
			body: `{"projectId":"p1","keepAlive":true,"timeout":600,"region":"eu-central-1","extensionId":"e1"}`,
			want: bb.CreateSessionRequest{
				ProjectID: "p1", KeepAlive: true, Timeout: 600, Region: bb.RegionEUCentral1, ExtensionID: "e1",
				Raw: json.RawMessage(`{"projectId":"p1","keepAlive":true,"timeout":600,"region":"eu-central-1","extensionId":"e1"}`),
			},
		},
		{
			name: "timeout bounds are inclusive",
			body: `{"timeout":60}`,
			want: bb.CreateSessionRequest{Timeout: 60, Region: bb.RegionUSWest2, Raw: json.RawMessage(`{"timeout":60}`)},
		},
		{
			name: "max timeout",
			body: `{"timeout":21600}`,
			want: bb.CreateSessionRequest{Timeout: 21600, Region: bb.RegionUSWest2, Raw: json.RawMessage(`{"timeout":21600}`)},
		},
		{
			name: "nulls are absent",
			body: `{"projectId":null,"timeout":null,"region":null,"extensionId":null,"userMetadata":null,"browserSettings":null,"proxies":null,"proxySettings":null}`,
			want: bb.CreateSessionRequest{
				Region: bb.RegionUSWest2,
				Raw:    json.RawMessage(`{"projectId":null,"timeout":null,"region":null,"extensionId":null,"userMetadata":null,"browserSettings":null,"proxies":null,"proxySettings":null}`),
			},
		},
		{
			name: "every region",
			body: `{"region":"ap-southeast-1"}`,
			want: bb.CreateSessionRequest{Region: bb.RegionAPSoutheast1, Raw: json.RawMessage(`{"region":"ap-southeast-1"}`)},
		},
		{
			name: "unknown fields are kept in Raw",
			body: `{"fingerprint":{"browsers":["chrome"]},"advancedStealth":true,"future":[1,2]}`,
			want: bb.CreateSessionRequest{
				Region: bb.RegionUSWest2,
				Raw:    json.RawMessage(`{"fingerprint":{"browsers":["chrome"]},"advancedStealth":true,"future":[1,2]}`),
			},
		},
		{
			name: "user metadata is compacted",
			body: `{"userMetadata": {"env": "staging", "order": {"id": 7}}}`,
			want: bb.CreateSessionRequest{
				Region:       bb.RegionUSWest2,
				UserMetadata: json.RawMessage(`{"env":"staging","order":{"id":7}}`),
				Raw:          json.RawMessage(`{"userMetadata":{"env":"staging","order":{"id":7}}}`),
			},
		},
		{
			name: "browser settings",
			body: `{"browserSettings":{"context":{"id":"c1","persist":true},"extensionId":"e2","viewport":{"width":1920,"height":1080},` +
				`"blockAds":true,"solveCaptchas":false,"captchaImageSelector":"#img","captchaInputSelector":"#in","recordSession":false,` +
				`"logSession":false,"advancedStealth":true,"verified":true,"os":"mac","allowedDomains":["example.com"],` +
				`"ignoreCertificateErrors":true,"fingerprint":{"devices":["desktop"]},"unknownSetting":1}}`,
			want: bb.CreateSessionRequest{
				Region:      bb.RegionUSWest2,
				ExtensionID: "e2",
				Settings: bb.BrowserSettings{
					Context:                 &bb.ContextSettings{ID: "c1", Persist: true},
					ExtensionID:             "e2",
					Viewport:                &bb.Viewport{Width: 1920, Height: 1080},
					BlockAds:                true,
					SolveCaptchas:           ptr(false),
					CaptchaImageSelector:    "#img",
					CaptchaInputSelector:    "#in",
					RecordSession:           ptr(false),
					LogSession:              ptr(false),
					AdvancedStealth:         true,
					Verified:                true,
					OS:                      "mac",
					AllowedDomains:          []string{"example.com"},
					IgnoreCertificateErrors: true,
					Fingerprint:             json.RawMessage(`{"devices":["desktop"]}`),
				},
				BrowserSettings: json.RawMessage(`{"context":{"id":"c1","persist":true},"extensionId":"e2","viewport":{"width":1920,"height":1080},` +
					`"blockAds":true,"solveCaptchas":false,"captchaImageSelector":"#img","captchaInputSelector":"#in","recordSession":false,` +
					`"logSession":false,"advancedStealth":true,"verified":true,"os":"mac","allowedDomains":["example.com"],` +
					`"ignoreCertificateErrors":true,"fingerprint":{"devices":["desktop"]},"unknownSetting":1}`),
				Raw: json.RawMessage(`{"browserSettings":{"context":{"id":"c1","persist":true},"extensionId":"e2","viewport":{"width":1920,"height":1080},` +
					`"blockAds":true,"solveCaptchas":false,"captchaImageSelector":"#img","captchaInputSelector":"#in","recordSession":false,` +
					`"logSession":false,"advancedStealth":true,"verified":true,"os":"mac","allowedDomains":["example.com"],` +
					`"ignoreCertificateErrors":true,"fingerprint":{"devices":["desktop"]},"unknownSetting":1}}`),
			},
		},
		{
			name: "top-level extensionId wins over browserSettings",
			body: `{"extensionId":"top","browserSettings":{"extensionId":"inner"}}`,
			want: bb.CreateSessionRequest{
				Region: bb.RegionUSWest2, ExtensionID: "top",
				Settings:        bb.BrowserSettings{ExtensionID: "inner"},
				BrowserSettings: json.RawMessage(`{"extensionId":"inner"}`),
				Raw:             json.RawMessage(`{"extensionId":"top","browserSettings":{"extensionId":"inner"}}`),
			},
		},
		{
			name: "managed proxies",
			body: `{"proxies":true}`,
			want: bb.CreateSessionRequest{
				Region: bb.RegionUSWest2, ProxyManaged: true, Proxies: json.RawMessage(`true`),
				Raw: json.RawMessage(`{"proxies":true}`),
			},
		},
		{
			name: "proxies false",
			body: `{"proxies":false}`,
			want: bb.CreateSessionRequest{
				Region: bb.RegionUSWest2, Proxies: json.RawMessage(`false`), Raw: json.RawMessage(`{"proxies":false}`),
			},
		},
		{
			name: "proxy rules",
			body: `{"proxies":[{"type":"browserbase","geolocation":{"country":"US","state":"NY","city":"New York"}},` +
				`{"type":"external","server":"http://proxy:8080","username":"u","password":"p","domainPattern":".*\\.example\\.com"},` +
				`{"type":"none","domainPattern":"internal"}],"proxySettings":{"caCertificates":["cert1"]}}`,
			want: bb.CreateSessionRequest{
				Region: bb.RegionUSWest2,
				Proxy: []bb.ProxyRule{
					{Type: "browserbase", Geolocation: json.RawMessage(`{"country":"US","state":"NY","city":"New York"}`)},
					{Type: "external", Server: "http://proxy:8080", Username: "u", Password: "p", DomainPattern: `.*\.example\.com`},
					{Type: "none", DomainPattern: "internal"},
				},
				Proxies: json.RawMessage(`[{"type":"browserbase","geolocation":{"country":"US","state":"NY","city":"New York"}},` +
					`{"type":"external","server":"http://proxy:8080","username":"u","password":"p","domainPattern":".*\\.example\\.com"},` +
					`{"type":"none","domainPattern":"internal"}]`),
				ProxySettings:    json.RawMessage(`{"caCertificates":["cert1"]}`),
				CACertificateIDs: []string{"cert1"},
				Raw: json.RawMessage(`{"proxies":[{"type":"browserbase","geolocation":{"country":"US","state":"NY","city":"New York"}},` +
					`{"type":"external","server":"http://proxy:8080","username":"u","password":"p","domainPattern":".*\\.example\\.com"},` +
					`{"type":"none","domainPattern":"internal"}],"proxySettings":{"caCertificates":["cert1"]}}`),
			},
		},
		{
			name: "user metadata of 511 characters",
			body: `{"userMetadata":{"k":"` + strings.Repeat("x", 511-len(`{"k":""}`)) + `"}}`,
			want: bb.CreateSessionRequest{
				Region:       bb.RegionUSWest2,
				UserMetadata: json.RawMessage(`{"k":"` + strings.Repeat("x", 511-len(`{"k":""}`)) + `"}`),
				Raw:          json.RawMessage(`{"userMetadata":{"k":"` + strings.Repeat("x", 511-len(`{"k":""}`)) + `"}}`),
			},
		},
		{
			// Browserbase counts characters as JavaScript does, not bytes: 503 "é" (1006
			// bytes) plus 8 characters of JSON is 511.
			name: "user metadata of 511 non-ASCII characters",
			body: `{"userMetadata":{"k":"` + strings.Repeat("é", 503) + `"}}`,
			want: bb.CreateSessionRequest{
				Region:       bb.RegionUSWest2,
				UserMetadata: json.RawMessage(`{"k":"` + strings.Repeat("é", 503) + `"}`),
				Raw:          json.RawMessage(`{"userMetadata":{"k":"` + strings.Repeat("é", 503) + `"}}`),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bb.DecodeCreateSessionRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeCreateSessionRequest(%q) error: %v", tt.body, err)
			}
			if diff := cmp.Diff(got, tt.want, cmpopts.IgnoreUnexported(bb.ProxyRule{})); diff != "" {
				t.Errorf("DecodeCreateSessionRequest(%q) mismatch (-got +want):\n%s", tt.body, diff)
			}
		})
	}
}

func TestDecodeCreateSessionRequestErrors(t *testing.T) {
	tests := []struct {
		name, body string
		wantMsg    string // the whole client-visible message
	}{
		{name: "malformed JSON", body: `{"timeout":`, wantMsg: "body is not valid JSON"},
		{name: "trailing garbage", body: `{} x`, wantMsg: "body is not valid JSON"},
		{name: "array body", body: `[]`, wantMsg: "body must be an object"},
		{name: "null body", body: `null`, wantMsg: "body must be an object"},
		{name: "string body", body: `"x"`, wantMsg: "body must be an object"},
		{name: "projectId not a string", body: `{"projectId":1}`, wantMsg: "body/projectId must be a string"},
		{name: "keepAlive not a boolean", body: `{"keepAlive":"yes"}`, wantMsg: "body/keepAlive must be a boolean"},
		{name: "timeout below minimum", body: `{"timeout":59}`, wantMsg: "body/timeout must be >= 60"},
		{name: "timeout zero", body: `{"timeout":0}`, wantMsg: "body/timeout must be >= 60"},
		{name: "timeout negative", body: `{"timeout":-1}`, wantMsg: "body/timeout must be >= 60"},
		{name: "timeout above maximum", body: `{"timeout":21601}`, wantMsg: "body/timeout must be <= 21600"},
		{name: "timeout string", body: `{"timeout":"x"}`, wantMsg: "body/timeout must be an integer"},
		{name: "timeout fraction", body: `{"timeout":60.5}`, wantMsg: "body/timeout must be an integer"},
		{name: "timeout overflow", body: `{"timeout":1e400}`, wantMsg: "body/timeout must be an integer"},
		{name: "region unknown", body: `{"region":"mars-1"}`, wantMsg: "body/region must be one of us-west-2, us-east-1, eu-central-1, ap-southeast-1"},
		{name: "region empty", body: `{"region":""}`, wantMsg: "body/region must be one of us-west-2, us-east-1, eu-central-1, ap-southeast-1"},
		{name: "region upper-case", body: `{"region":"US-WEST-2"}`, wantMsg: "body/region must be one of us-west-2, us-east-1, eu-central-1, ap-southeast-1"},
		{name: "region not a string", body: `{"region":2}`, wantMsg: "body/region must be a string"},
		{name: "extensionId not a string", body: `{"extensionId":true}`, wantMsg: "body/extensionId must be a string"},
		{name: "userMetadata array", body: `{"userMetadata":[1]}`, wantMsg: "body/userMetadata must be an object"},
		{name: "userMetadata string", body: `{"userMetadata":"x"}`, wantMsg: "body/userMetadata must be an object"},
		{
			name:    "userMetadata of 512 characters",
			body:    `{"userMetadata":{"k":"` + strings.Repeat("x", 512-len(`{"k":""}`)) + `"}}`,
			wantMsg: "body/userMetadata must be shorter than 512 characters when serialized (got 512)",
		},
		{
			name:    "userMetadata of 512 non-ASCII characters",
			body:    `{"userMetadata":{"k":"` + strings.Repeat("é", 504) + `"}}`,
			wantMsg: "body/userMetadata must be shorter than 512 characters when serialized (got 512)",
		},
		{
			// Characters outside the BMP count twice in JavaScript (surrogate pairs).
			name:    "userMetadata of 512 UTF-16 code units",
			body:    `{"userMetadata":{"k":"` + strings.Repeat("😀", 252) + `"}}`,
			wantMsg: "body/userMetadata must be shorter than 512 characters when serialized (got 512)",
		},
		{name: "browserSettings not an object", body: `{"browserSettings":[]}`, wantMsg: "body/browserSettings must be an object"},
		{name: "os unknown", body: `{"browserSettings":{"os":"amiga"}}`, wantMsg: "body/browserSettings/os must be one of windows, mac, linux, mobile, tablet"},
		{name: "os not a string", body: `{"browserSettings":{"os":1}}`, wantMsg: "body/browserSettings/os must be a string"},
		{name: "viewport width not an integer", body: `{"browserSettings":{"viewport":{"width":"wide"}}}`, wantMsg: "body/browserSettings/viewport/width must be an integer"},
		{name: "viewport too large", body: `{"browserSettings":{"viewport":{"width":7681}}}`, wantMsg: "body/browserSettings/viewport width and height must be between 1 and 7680"},
		{name: "viewport negative", body: `{"browserSettings":{"viewport":{"height":-1}}}`, wantMsg: "body/browserSettings/viewport width and height must be between 1 and 7680"},
		{name: "context without id", body: `{"browserSettings":{"context":{"persist":true}}}`, wantMsg: "body/browserSettings/context must have required property 'id'"},
		{name: "context blank id", body: `{"browserSettings":{"context":{"id":"  "}}}`, wantMsg: "body/browserSettings/context must have required property 'id'"},
		{name: "context not an object", body: `{"browserSettings":{"context":"c1"}}`, wantMsg: "body/browserSettings/context must be an object"},
		{name: "blockAds not a boolean", body: `{"browserSettings":{"blockAds":1}}`, wantMsg: "body/browserSettings/blockAds must be a boolean"},
		{name: "allowedDomains not an array", body: `{"browserSettings":{"allowedDomains":"example.com"}}`, wantMsg: "body/browserSettings/allowedDomains must be an array"},
		{name: "allowedDomains empty entry", body: `{"browserSettings":{"allowedDomains":["a.com",""]}}`, wantMsg: "body/browserSettings/allowedDomains/1 must be a non-empty domain"},
		{name: "fingerprint not an object", body: `{"browserSettings":{"fingerprint":5}}`, wantMsg: "body/browserSettings/fingerprint must be an object"},
		// security-review F6: fingerprint fields reach Chromium's command line and CDP.
		{name: "locale with NUL", body: `{"browserSettings":{"fingerprint":{"locales":["en-US\u0000x"]}}}`,
			wantMsg: `body/browserSettings/fingerprint/locales/0 must be a language tag such as "en-US" (letters, digits and hyphens, at most 35 bytes)`},
		{name: "locale too long", body: `{"browserSettings":{"fingerprint":{"locales":["en","` + strings.Repeat("a", 140000) + `"]}}}`,
			wantMsg: `body/browserSettings/fingerprint/locales/1 must be a language tag such as "en-US" (letters, digits and hyphens, at most 35 bytes)`},
		{name: "locale not a tag", body: `{"browserSettings":{"fingerprint":{"locales":["!!bad locale"]}}}`,
			wantMsg: `body/browserSettings/fingerprint/locales/0 must be a language tag such as "en-US" (letters, digits and hyphens, at most 35 bytes)`},
		{name: "locale with a comma", body: `{"browserSettings":{"fingerprint":{"locales":["en,--no-sandbox"]}}}`,
			wantMsg: `body/browserSettings/fingerprint/locales/0 must be a language tag such as "en-US" (letters, digits and hyphens, at most 35 bytes)`},
		{name: "locale empty", body: `{"browserSettings":{"fingerprint":{"locales":[""]}}}`,
			wantMsg: `body/browserSettings/fingerprint/locales/0 must be a language tag such as "en-US" (letters, digits and hyphens, at most 35 bytes)`},
		{name: "locale key in another case", body: `{"browserSettings":{"fingerprint":{"locales":["en"],"LOCALES":["en\u0000"]}}}`,
			wantMsg: `body/browserSettings/fingerprint/locales/0 must be a language tag such as "en-US" (letters, digits and hyphens, at most 35 bytes)`},
		{name: "too many locales", body: `{"browserSettings":{"fingerprint":{"locales":["a1","en","de","fr","it","es","pt","nl","sv","da","fi"]}}}`,
			wantMsg: "body/browserSettings/fingerprint/locales must not have more than 10 entries"},
		{name: "locales not an array", body: `{"browserSettings":{"fingerprint":{"locales":"en-US"}}}`,
			wantMsg: "body/browserSettings/fingerprint/locales must be an array"},
		{name: "locale not a string", body: `{"browserSettings":{"fingerprint":{"locales":[1]}}}`,
			wantMsg: "body/browserSettings/fingerprint/locales must be a string"},
		{name: "browsers entry with NUL", body: `{"browserSettings":{"fingerprint":{"browsers":["chrome\u0000"]}}}`,
			wantMsg: `body/browserSettings/fingerprint/browsers/0 must be a name such as "chrome"`},
		{name: "too many devices", body: `{"browserSettings":{"fingerprint":{"devices":[` + strings.Repeat(`"desktop",`, 16) + `"mobile"]}}}`,
			wantMsg: "body/browserSettings/fingerprint/devices must not have more than 16 entries"},
		{name: "operatingSystems not strings", body: `{"browserSettings":{"fingerprint":{"operatingSystems":[{}]}}}`,
			wantMsg: "body/browserSettings/fingerprint/operatingSystems must be a string"},
		{name: "httpVersion 3", body: `{"browserSettings":{"fingerprint":{"httpVersion":3}}}`,
			wantMsg: "body/browserSettings/fingerprint/httpVersion must be 1 or 2"},
		{name: "screen negative", body: `{"browserSettings":{"fingerprint":{"screen":{"maxWidth":-5}}}}`,
			wantMsg: "body/browserSettings/fingerprint/screen/maxWidth must be an integer from 0 to 100000"},
		{name: "screen not an integer", body: `{"browserSettings":{"fingerprint":{"screen":{"minHeight":"tall"}}}}`,
			wantMsg: "body/browserSettings/fingerprint/screen/minHeight must be an integer"},
		{name: "allowedDomains with NUL", body: `{"browserSettings":{"allowedDomains":["a.com\u0000"]}}`,
			wantMsg: "body/browserSettings/allowedDomains/0 must be a domain name of at most 253 bytes"},
		{name: "allowedDomains too long", body: `{"browserSettings":{"allowedDomains":["` + strings.Repeat("a", 300) + `.com"]}}`,
			wantMsg: "body/browserSettings/allowedDomains/0 must be a domain name of at most 253 bytes"},
		{name: "proxies string", body: `{"proxies":"yes"}`, wantMsg: "body/proxies must be a boolean or an array of proxy rules"},
		{name: "proxies object", body: `{"proxies":{"type":"none"}}`, wantMsg: "body/proxies must be a boolean or an array of proxy rules"},
		{name: "proxy rule not an object", body: `{"proxies":[1]}`, wantMsg: "body/proxies/0 must be an object"},
		{name: "proxy rule without type", body: `{"proxies":[{}]}`, wantMsg: "body/proxies/0 must have required property 'type'"},
		{name: "proxy rule unknown type", body: `{"proxies":[{"type":"none"},{"type":"tor"}]}`, wantMsg: "body/proxies/1/type must be one of browserbase, external, none"},
		{name: "external proxy without server", body: `{"proxies":[{"type":"external"}]}`, wantMsg: "body/proxies/0/server is required for an external proxy"},
		{name: "proxy type not a string", body: `{"proxies":[{"type":1}]}`, wantMsg: "body/proxies/0/type must be a string"},
		{name: "geolocation not an object", body: `{"proxies":[{"type":"browserbase","geolocation":"US"}]}`, wantMsg: "body/proxies/0/geolocation must be an object"},
		{name: "proxySettings not an object", body: `{"proxySettings":[]}`, wantMsg: "body/proxySettings must be an object"},
		{name: "caCertificates not strings", body: `{"proxySettings":{"caCertificates":[1]}}`, wantMsg: "body/proxySettings/caCertificates must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bb.DecodeCreateSessionRequest([]byte(tt.body))
			if err == nil {
				t.Fatalf("DecodeCreateSessionRequest(%q) = nil error; want %q", tt.body, tt.wantMsg)
			}
			if got := bb.CodeOf(err); got != bb.CodeInvalid {
				t.Errorf("DecodeCreateSessionRequest(%q) code = %q; want %q", tt.body, got, bb.CodeInvalid)
			}
			if got := bb.MessageOf(err); got != tt.wantMsg {
				t.Errorf("DecodeCreateSessionRequest(%q) message = %q; want %q", tt.body, got, tt.wantMsg)
			}
		})
	}
}

// FuzzCreateSessionRequest checks that no body panics the decoder and that every
// rejection is a CodeInvalid error a client can be shown.
func FuzzCreateSessionRequest(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `null`, `[]`, `{"timeout":60}`, `{"timeout":"x"}`, `{"region":"us-east-1"}`,
		`{"userMetadata":{"a":{"b":"c"}}}`, `{"browserSettings":{"context":{"id":"c"},"viewport":{"width":1}}}`,
		`{"proxies":[{"type":"external","server":"http://p"}]}`, `{"proxies":true}`,
		`{"browserSettings":{"fingerprint":{"httpVersion":2}}}`, `{"proxySettings":{"caCertificates":["x"]}}`,
		`{"browserSettings":{"fingerprint":{"locales":["en-US\u0000x"]}}}`,
		`{"browserSettings":{"fingerprint":{"locales":["de-DE","en"],"Locales":["fr"],"screen":{"maxWidth":800}}}}`,
		`{"browserSettings":{"os":"mobile","fingerprint":{"locales":["zh_Hant_TW"]},"viewport":{"width":7680,"height":1}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := bb.DecodeCreateSessionRequest(body)
		if err != nil {
			if code := bb.CodeOf(err); code != bb.CodeInvalid {
				t.Fatalf("DecodeCreateSessionRequest(%q) code = %q (%v); want %q", body, code, err, bb.CodeInvalid)
			}
			if bb.MessageOf(err) == "" {
				t.Fatalf("DecodeCreateSessionRequest(%q) error %v has no client message", body, err)
			}
			return
		}
		if !req.Region.Valid() {
			t.Errorf("DecodeCreateSessionRequest(%q) region = %q", body, req.Region)
		}
		if req.Timeout != 0 && (req.Timeout < bb.MinTimeout || req.Timeout > bb.MaxTimeout) {
			t.Errorf("DecodeCreateSessionRequest(%q) timeout = %d", body, req.Timeout)
		}
		if !json.Valid(req.Raw) {
			t.Errorf("DecodeCreateSessionRequest(%q) Raw = %q is not JSON", body, req.Raw)
		}
		if req.UserMetadata != nil && !json.Valid(req.UserMetadata) {
			t.Errorf("DecodeCreateSessionRequest(%q) UserMetadata = %q is not JSON", body, req.UserMetadata)
		}
		// What an accepted request puts on Chromium's command line can be exec'd: no NUL,
		// short flags (security-review F6).
		for _, given := range []bool{false, true} {
			e := bb.EmulationFor(req.Settings, bb.Viewport{Width: 1280, Height: 720}, given)
			for _, arg := range e.LaunchArgs("156.0.8078.108") {
				if strings.ContainsRune(arg, 0) || len(arg) > 1024 {
					t.Fatalf("DecodeCreateSessionRequest(%q) accepted, and gives the launch argument %q", body, arg)
				}
			}
			if p := e.Profile; p != nil {
				if len(p.Languages) == 0 || len(p.Languages) > bb.MaxLocales+1 {
					t.Errorf("DecodeCreateSessionRequest(%q): languages %q", body, p.Languages)
				}
				for _, l := range p.Languages {
					if !bb.ValidLocale(l) {
						t.Errorf("DecodeCreateSessionRequest(%q): language %q is not a tag", body, l)
					}
				}
			}
		}
	})
}

func TestValidLocale(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"en", true}, {"en-US", true}, {"de-DE", true}, {"zh-Hant-TW", true}, {"es-419", true},
		{"en_US", true}, {"sr-Latn-RS", true}, {"x-private", false}, {"i-klingon", false},
		{"", false}, {"e", false}, {"en-", false}, {"-en", false}, {"en--US", false}, {"en US", false},
		{"en-US\x00", false}, {"en,fr", false}, {"12-US", false}, {"en-toolongsub", false},
		{"abcdefgh-aaaaaaaa-bbbbbbbb-cccccccc", true}, {"abcdefgh-aaaaaaaa-bbbbbbbb-cccccccc-d", false},
		{"en-ÜS", false}, {"!!bad locale", false}, {"en;q=0.9", false},
	}
	for _, tt := range tests {
		if got := bb.ValidLocale(tt.in); got != tt.want {
			t.Errorf("ValidLocale(%q) = %v; want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzValidLocale checks that what ValidLocale accepts is safe on a command line and in
// an Accept-Language header: short printable ASCII without separators.
func FuzzValidLocale(f *testing.F) {
	for _, s := range []string{"en-US", "zh_Hant_TW", "en-US\x00x", "en,fr", "", "abcdefgh-aaaaaaaa-bbbbbbbb-cccccccc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !bb.ValidLocale(s) {
			return
		}
		if len(s) > bb.MaxLocaleLength || strings.ContainsAny(s, "\x00 ,;=\"'\\\n\r\t") {
			t.Errorf("ValidLocale(%q) = true", s)
		}
		for _, c := range []byte(s) {
			if c >= 0x80 {
				t.Errorf("ValidLocale(%q) = true with a non-ASCII byte", s)
			}
		}
	})
}
