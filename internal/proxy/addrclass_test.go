package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		addr string
		want Class
	}{
		// IPv4
		{"0.0.0.0", Unspecified},
		{"0.1.2.3", Unspecified},
		{"10.0.0.1", Private},
		{"10.255.255.255", Private},
		{"100.63.255.255", Public},
		{"100.64.0.1", Shared},
		{"100.127.255.255", Shared},
		{"100.128.0.0", Public},
		{"127.0.0.1", Loopback},
		{"127.0.0.2", Loopback},
		{"127.255.255.254", Loopback},
		{"169.254.169.254", Metadata},
		{"169.254.0.1", LinkLocal},
		{"169.254.170.2", LinkLocal}, // ECS task metadata
		{"172.15.255.255", Public},
		{"172.16.0.1", Private},
		{"172.31.255.255", Private},
		{"172.32.0.0", Public},
		{"192.0.0.8", Reserved},
		{"192.0.2.1", Reserved},
		{"192.88.99.1", Reserved},
		{"192.168.1.1", Private},
		{"198.18.0.1", Reserved},
		{"198.19.255.255", Reserved},
		{"198.51.100.7", Reserved},
		{"203.0.113.9", Reserved},
		{"224.0.0.1", Multicast},
		{"239.255.255.250", Multicast},
		{"240.0.0.1", Reserved},
		{"255.255.255.255", Broadcast},
		{"1.1.1.1", Public},
		{"8.8.8.8", Public},
		{"93.184.215.14", Public},
		{"223.255.255.255", Public},
		// IPv6
		{"::", Unspecified},
		{"::1", Loopback},
		{"fe80::1", LinkLocal},
		{"febf::1", LinkLocal},
		{"fec0::1", Private},
		{"fc00::1", Private},
		{"fd00:ec2::254", Private}, // AWS metadata over IPv6
		{"ff02::1", Multicast},
		{"ff05::2", Multicast},
		{"100::1", Reserved},
		{"2001:db8::1", Reserved},
		{"3fff::1", Reserved},
		{"2001:2::1", Reserved},
		{"2001:10::1", Reserved},
		{"4000::1", Reserved}, // outside global unicast
		{"1::1", Reserved},
		{"2606:4700:4700::1111", Public},
		{"2a00:1450:4001:80b::200e", Public},
		// IPv4-mapped: the embedded address decides.
		{"::ffff:127.0.0.1", Loopback},
		{"::ffff:7f00:1", Loopback},
		{"::ffff:169.254.169.254", Metadata},
		{"::ffff:10.1.2.3", Private},
		{"::ffff:0.0.0.0", Unspecified},
		{"::ffff:8.8.8.8", Public},
		// IPv4-compatible (deprecated) and SIIT: never public.
		{"::127.0.0.1", Loopback},
		{"::10.0.0.1", Private},
		{"::8.8.8.8", Reserved},
		{"::0.0.0.2", Unspecified},
		{"::ffff:0:127.0.0.1", Loopback},
		{"::ffff:0:8.8.8.8", Reserved},
		// NAT64 (RFC 6052): the embedded address decides.
		{"64:ff9b::127.0.0.1", Loopback},
		{"64:ff9b::a00:1", Private},
		{"64:ff9b::169.254.169.254", Metadata},
		{"64:ff9b::8.8.8.8", Public},
		{"64:ff9b:1::1", Private},
		// 6to4: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD.
		{"2002:7f00:1::", Loopback},
		{"2002:a9fe:a9fe::1", Metadata},
		{"2002:c0a8:101::1", Private},
		{"2002:808:808::1", Public},
		// Teredo: server at bits 32-63, client inverted at 96-127.
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", Loopback}, // client ^ ffffffff = 127.0.0.1
		{"2001:0:a00:1::1", Private},                       // server 10.0.0.1
		{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", Public},   // client 8.8.8.8
		// Zones do not hide a class.
		{"fe80::1%eth0", LinkLocal},
		{"::1%lo", Loopback},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got := Classify(netip.MustParseAddr(tt.addr))
			if got != tt.want {
				t.Errorf("Classify(%s) = %q; want %q", tt.addr, got, tt.want)
			}
		})
	}
	if got := Classify(netip.Addr{}); got != Reserved {
		t.Errorf("Classify(invalid) = %q; want Reserved", got)
	}
}

// TestClassifyStdlib checks the classifier against net/netip's own predicates: whatever
// netip calls loopback, private, link-local, multicast or unspecified is never Public.
func TestClassifyStdlib(t *testing.T) {
	for _, s := range []string{"127.3.4.5", "10.9.9.9", "172.20.1.1", "192.168.0.0", "169.254.1.1",
		"224.1.1.1", "0.0.0.0", "::", "::1", "fe80::abcd", "fd12::1", "ff0e::1", "ff01::1", "ff02::2"} {
		a := netip.MustParseAddr(s)
		if !(a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() ||
			a.IsInterfaceLocalMulticast() || a.IsLinkLocalMulticast()) {
			t.Fatalf("%s: not special to netip; fix the test", s)
		}
		if c := Classify(a); c == Public {
			t.Errorf("Classify(%s) = Public", s)
		}
		if c := Classify(netip.AddrFrom16(a.As16())); a.Is4() && c == Public {
			t.Errorf("Classify(mapped %s) = Public", s)
		}
	}
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		in       string
		wantName string
		wantAddr string
		wantErr  bool
	}{
		{in: "example.com", wantName: "example.com"},
		{in: "Example.COM", wantName: "example.com"},
		{in: "example.com.", wantName: "example.com."}, // resolved as sent: absolute
		{in: "a-b_c.example", wantName: "a-b_c.example"},
		{in: "localhost", wantName: "localhost"},
		{in: "xn--bcher-kva.example", wantName: "xn--bcher-kva.example"},
		{in: "1.2.3.example", wantName: "1.2.3.example"},
		{in: "0xg", wantName: "0xg"}, // not hex: a name
		{in: "127.0.0.1", wantAddr: "127.0.0.1"},
		{in: "::1", wantAddr: "::1"},
		{in: "::ffff:127.0.0.1", wantAddr: "::ffff:127.0.0.1"},
		{in: "2001:db8::1", wantAddr: "2001:db8::1"},
		// Forms a resolver might read as an address (inet_aton): refused.
		{in: "2130706433", wantErr: true},
		{in: "0x7f000001", wantErr: true},
		{in: "0x7f.1", wantErr: true},
		{in: "127.1", wantErr: true},
		{in: "127.0.1", wantErr: true},
		{in: "0177.0.0.1", wantErr: true},
		{in: "127.000.000.001", wantErr: true},
		{in: "1.2.3.4.5", wantErr: true},
		{in: "256.0.0.1", wantErr: true},
		{in: "example.0x", wantErr: true},
		{in: "example.123", wantErr: true},
		{in: "example.0XFF", wantErr: true},
		{in: "127.0.0.1.", wantErr: true},
		// Not clean host names.
		{in: "", wantErr: true},
		{in: ".", wantErr: true},
		{in: "a..b", wantErr: true},
		{in: ".example.com", wantErr: true},
		{in: "example.com..", wantErr: true},
		{in: "exa mple.com", wantErr: true},
		{in: "exa%2ample.com", wantErr: true},
		{in: "bücher.example", wantErr: true},
		{in: "a\x00b", wantErr: true},
		{in: "a/b", wantErr: true},
		{in: "user@example.com", wantErr: true},
		{in: strings.Repeat("a", 64) + ".example", wantErr: true},
		{in: strings.Repeat("a.", 127) + "com", wantErr: true},
		{in: "fe80::1%eth0", wantErr: true},
		{in: "[::1]", wantErr: true},
		{in: "::ffff:1.2.3", wantErr: true},
		{in: "1:2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, addr, err := parseHost(tt.in)
			var gotAddr string
			if addr.IsValid() {
				gotAddr = addr.String()
			}
			if (err != nil) != tt.wantErr || name != tt.wantName || gotAddr != tt.wantAddr {
				t.Errorf("parseHost(%q) = %q, %q, %v; want %q, %q, err=%v", tt.in, name, gotAddr, err, tt.wantName, tt.wantAddr, tt.wantErr)
			}
		})
	}
}

// FuzzParseHost checks that the host parser never panics and that what it accepts as a
// name cannot be read as an address by any parser: no IP literal for net/netip or net,
// only letters, digits, '-', '_' and dots, and a last label that is not a number.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"example.com", "127.0.0.1", "::1", "0x7f.1", "2130706433", "::ffff:7f00:1",
		"localhost.", "a..b", "fe80::1%25eth0", "0177.1", "1.2.3.4.", "xn--n3h.example", "0x", "a.0x1g"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		name, addr, err := parseHost(in)
		if err != nil {
			if name != "" || addr.IsValid() {
				t.Fatalf("parseHost(%q) failed with results %q, %v", in, name, addr)
			}
			return
		}
		if addr.IsValid() == (name != "") {
			t.Fatalf("parseHost(%q) = %q, %v: exactly one of name and address", in, name, addr)
		}
		if addr.IsValid() {
			if addr.Zone() != "" {
				t.Fatalf("parseHost(%q) kept the zone %q", in, addr.Zone())
			}
			if back, err := netip.ParseAddr(addr.String()); err != nil || back != addr {
				t.Fatalf("parseHost(%q) = %v, which does not round-trip", in, addr)
			}
			_ = Classify(addr) // must not panic
			return
		}
		trimmed := strings.TrimSuffix(name, ".")
		if _, err := netip.ParseAddr(trimmed); err == nil {
			t.Fatalf("parseHost(%q) = name %q, which is an address", in, name)
		}
		if net.ParseIP(trimmed) != nil {
			t.Fatalf("parseHost(%q) = name %q, which net.ParseIP reads", in, name)
		}
		if strings.Trim(trimmed, "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" || trimmed != strings.ToLower(trimmed) {
			t.Fatalf("parseHost(%q) = name %q with other characters", in, name)
		}
		labels := strings.Split(trimmed, ".")
		last := labels[len(labels)-1]
		if strings.Trim(last, "0123456789") == "" || (strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "") {
			t.Fatalf("parseHost(%q) = name %q ending in a number", in, name)
		}
	})
}

// FuzzClassify checks that every IPv6 form of an IPv4 address that embeds it literally
// (mapped, compatible, NAT64) is at least as refused as the address itself.
func FuzzClassify(f *testing.F) {
	f.Add([]byte{127, 0, 0, 1})
	f.Add([]byte{169, 254, 169, 254})
	f.Add([]byte{8, 8, 8, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 4 {
			return
		}
		v4 := netip.AddrFrom4([4]byte(b))
		want := Classify(v4)
		forms := map[string]netip.Addr{
			"mapped": netip.AddrFrom16(v4.As16()),
			"nat64":  netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 10: 0, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}),
			"6to4":   netip.AddrFrom16([16]byte{0x20, 0x02, b[0], b[1], b[2], b[3], 15: 1}),
		}
		for name, a := range forms {
			if got := Classify(a); want != Public && got == Public {
				t.Errorf("Classify(%s %v) = Public; %v is %q", name, a, v4, want)
			}
		}
		if diff := cmp.Diff(Classify(forms["mapped"]), want); diff != "" {
			t.Errorf("mapped %v (-got +want):\n%s", v4, diff)
		}
	})
}
