package webdriver

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testAddr = "127.0.0.1:9222"

func TestNewSessionBody(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        string // the alwaysMatch sent to chromedriver
		wantDropped []string
		wantCode    string // W3C error code; "" for success
	}{
		{
			name: "selenium node forBrowser chrome",
			in:   `{"capabilities":{"firstMatch":[{}],"alwaysMatch":{"browserName":"chrome","pageLoadStrategy":"normal"}}}`,
			want: `{"pageLoadStrategy":"normal","goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222"}}`,
		},
		{
			name: "python ChromeOptions: launch options dropped, attach options kept",
			in: `{"capabilities":{"firstMatch":[{}],"alwaysMatch":{"browserName":"chrome","pageLoadStrategy":"normal",
				"goog:chromeOptions":{"extensions":[],"args":["--headless"],"binary":"/x","debuggerAddress":"10.0.0.1:1",
				"mobileEmulation":{"deviceName":"Pixel 7"},"prefs":{"a":1}}}}}`,
			want: `{"pageLoadStrategy":"normal","goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222","mobileEmulation":{"deviceName":"Pixel 7"}}}`,
			wantDropped: []string{"goog:chromeOptions.args", "goog:chromeOptions.binary", "goog:chromeOptions.debuggerAddress",
				"goog:chromeOptions.extensions", "goog:chromeOptions.prefs"},
		},
		{
			name:        "proxy and webSocketUrl dropped",
			in:          `{"capabilities":{"alwaysMatch":{"proxy":{"proxyType":"manual","httpProxy":"h:1"},"webSocketUrl":true,"acceptInsecureCerts":true}}}`,
			want:        `{"acceptInsecureCerts":true,"goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222"}}`,
			wantDropped: []string{"proxy", "webSocketUrl"},
		},
		{
			name: "first matching firstMatch entry wins",
			in: `{"capabilities":{"alwaysMatch":{"timeouts":{"script":1000}},"firstMatch":[
				{"browserName":"firefox","moz:firefoxOptions":{}},{"browserName":"chromium","se:name":"x"},{"browserName":"chrome"}]}}`,
			want: `{"timeouts":{"script":1000},"se:name":"x","goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222"}}`,
		},
		{
			name: "legacy desiredCapabilities",
			in:   `{"desiredCapabilities":{"browserName":"chrome","goog:chromeOptions":{"args":["x"]}}}`,
			want: `{"goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222"}}`, wantDropped: []string{"goog:chromeOptions.args"},
		},
		{name: "empty object", in: `{}`, want: `{"goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222"}}`},
		{name: "null parts", in: `{"capabilities":{"alwaysMatch":null,"firstMatch":null}}`,
			want: `{"goog:chromeOptions":{"debuggerAddress":"127.0.0.1:9222"}}`},
		{name: "firefox only", in: `{"capabilities":{"alwaysMatch":{"browserName":"firefox"}}}`, wantCode: errSessionNotCreated},
		{name: "duplicate key", in: `{"capabilities":{"alwaysMatch":{"browserName":"chrome"},"firstMatch":[{"browserName":"chrome"}]}}`,
			wantCode: errInvalidArgument},
		{name: "empty firstMatch", in: `{"capabilities":{"firstMatch":[]}}`, wantCode: errInvalidArgument},
		{name: "firstMatch not objects", in: `{"capabilities":{"firstMatch":[1]}}`, wantCode: errInvalidArgument},
		{name: "browserName not a string", in: `{"capabilities":{"alwaysMatch":{"browserName":1}}}`, wantCode: errInvalidArgument},
		{name: "chromeOptions not an object", in: `{"capabilities":{"alwaysMatch":{"goog:chromeOptions":[]}}}`, wantCode: errInvalidArgument},
		{name: "not JSON", in: `capabilities`, wantCode: errInvalidArgument},
		{name: "array", in: `[]`, wantCode: errInvalidArgument},
		{name: "trailing data", in: `{} {}`, wantCode: errInvalidArgument},
		{name: "empty body", in: ``, wantCode: errInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, dropped, err := newSessionBody([]byte(tt.in), testAddr)
			if tt.wantCode != "" {
				var we *wdError
				if !errors.As(err, &we) || we.code != tt.wantCode {
					t.Fatalf("newSessionBody(%s) error = %v; want code %q", tt.in, err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("newSessionBody(%s): %v", tt.in, err)
			}
			var got struct {
				Capabilities struct {
					AlwaysMatch any `json:"alwaysMatch"`
				} `json:"capabilities"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got.Capabilities.AlwaysMatch); diff != "" {
				t.Errorf("alwaysMatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDropped, dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRewriteCapabilities(t *testing.T) {
	in := map[string]json.RawMessage{
		"browserName":        json.RawMessage(`"chrome"`),
		"goog:chromeOptions": json.RawMessage(`{"debuggerAddress":"127.0.0.1:1"}`),
	}
	if err := rewriteCapabilities(in); err != nil {
		t.Fatal(err)
	}
	if _, ok := in["goog:chromeOptions"]; ok {
		t.Errorf("goog:chromeOptions with only debuggerAddress kept: %s", in["goog:chromeOptions"])
	}
	in["goog:chromeOptions"] = json.RawMessage(`{"debuggerAddress":"127.0.0.1:1","mobileEmulation":{}}`)
	if err := rewriteCapabilities(in); err != nil {
		t.Fatal(err)
	}
	if got, want := string(in["goog:chromeOptions"]), `{"mobileEmulation":{}}`; got != want {
		t.Errorf("goog:chromeOptions = %s; want %s", got, want)
	}
}

// FuzzNewSessionBody checks that any body gives either a WebDriver error (400 invalid
// argument or "session not created") or a body that attaches to the given address.
func FuzzNewSessionBody(f *testing.F) {
	for _, s := range []string{
		`{"capabilities":{"firstMatch":[{}],"alwaysMatch":{"browserName":"chrome"}}}`,
		`{"capabilities":{"alwaysMatch":{"goog:chromeOptions":{"args":["a"],"mobileEmulation":{}}}}}`,
		`{"desiredCapabilities":{"browserName":"chrome"}}`,
		`{"capabilities":{"firstMatch":[{"browserName":"firefox"},{"browserName":"chromium"}]}}`,
		`{"capabilities":null}`, `{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, _, err := newSessionBody(body, testAddr)
		if err != nil {
			var we *wdError
			if !errors.As(err, &we) {
				t.Fatalf("error is not a WebDriver error: %v", err)
			}
			if !(we.code == errInvalidArgument && we.status == http.StatusBadRequest) &&
				!(we.code == errSessionNotCreated && we.status == http.StatusInternalServerError) {
				t.Fatalf("unexpected error %d %q: %s", we.status, we.code, we.message)
			}
			return
		}
		var got struct {
			Capabilities struct {
				AlwaysMatch map[string]json.RawMessage `json:"alwaysMatch"`
				FirstMatch  any                        `json:"firstMatch"`
			} `json:"capabilities"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		am := got.Capabilities.AlwaysMatch
		for _, k := range []string{"browserName", "proxy", "webSocketUrl"} {
			if _, ok := am[k]; ok {
				t.Errorf("output keeps %s", k)
			}
		}
		var opts map[string]any
		if err := json.Unmarshal(am["goog:chromeOptions"], &opts); err != nil || opts["debuggerAddress"] != testAddr {
			t.Errorf("goog:chromeOptions = %s; want debuggerAddress %s", am["goog:chromeOptions"], testAddr)
		}
		for k := range opts {
			if k != "debuggerAddress" && k != "mobileEmulation" && k != "perfLoggingPrefs" && k != "windowTypes" {
				t.Errorf("launch option %s kept", k)
			}
		}
		if got.Capabilities.FirstMatch != nil {
			t.Errorf("firstMatch sent: %v", got.Capabilities.FirstMatch)
		}
	})
}
