package proxy

import (
	"errors"
	"net/netip"
	"strings"
)

// Class is the kind of a destination address, as the blocked page and the log name it.
// Every class but Public is refused unless the operator allows private networks.
type Class string

// Address classes. The ranges are those of the IANA special-purpose address registries
// (RFC 6890 and its updates) that a browser on a server must not reach: the server
// itself, its link (cloud metadata at 169.254.169.254), its private networks, and
// addresses that are not unicast destinations on the internet.
const (
	Public      Class = "public"
	Unspecified Class = "unspecified (this host)"
	Loopback    Class = "loopback"
	LinkLocal   Class = "link-local"
	Metadata    Class = "link-local (cloud metadata service)"
	Private     Class = "private network"
	Shared      Class = "shared address space (carrier-grade NAT)"
	Multicast   Class = "multicast"
	Broadcast   Class = "broadcast"
	Reserved    Class = "reserved (not a public unicast address)"
)

type prefixClass struct {
	p netip.Prefix
	c Class
}

// v4Classes are checked in order: the first prefix that contains the address wins.
var v4Classes = []prefixClass{
	{netip.MustParsePrefix("0.0.0.0/8"), Unspecified}, // "this network"; 0.0.0.0 reaches the host
	{netip.MustParsePrefix("10.0.0.0/8"), Private},
	{netip.MustParsePrefix("100.64.0.0/10"), Shared},
	{netip.MustParsePrefix("127.0.0.0/8"), Loopback},
	{netip.MustParsePrefix("169.254.169.254/32"), Metadata},
	{netip.MustParsePrefix("169.254.0.0/16"), LinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), Private},
	{netip.MustParsePrefix("192.0.0.0/24"), Reserved},   // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), Reserved},   // documentation
	{netip.MustParsePrefix("192.88.99.0/24"), Reserved}, // 6to4 relay anycast (deprecated)
	{netip.MustParsePrefix("192.168.0.0/16"), Private},
	{netip.MustParsePrefix("198.18.0.0/15"), Reserved},   // benchmarking
	{netip.MustParsePrefix("198.51.100.0/24"), Reserved}, // documentation
	{netip.MustParsePrefix("203.0.113.0/24"), Reserved},  // documentation
	{netip.MustParsePrefix("224.0.0.0/4"), Multicast},
	{netip.MustParsePrefix("255.255.255.255/32"), Broadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), Reserved},
}

// v6Classes are checked in order after the forms that embed an IPv4 address.
var v6Classes = []prefixClass{
	{netip.MustParsePrefix("::/128"), Unspecified},
	{netip.MustParsePrefix("::1/128"), Loopback},
	{netip.MustParsePrefix("64:ff9b:1::/48"), Private}, // local-use NAT64 (RFC 8215)
	{netip.MustParsePrefix("100::/64"), Reserved},      // discard-only
	{netip.MustParsePrefix("2001:2::/48"), Reserved},   // benchmarking
	{netip.MustParsePrefix("2001:10::/28"), Reserved},  // ORCHID
	{netip.MustParsePrefix("2001:20::/28"), Reserved},  // ORCHIDv2
	{netip.MustParsePrefix("2001:db8::/32"), Reserved}, // documentation
	{netip.MustParsePrefix("3fff::/20"), Reserved},     // documentation (RFC 9637)
	{netip.MustParsePrefix("fc00::/7"), Private},       // unique local
	{netip.MustParsePrefix("fe80::/10"), LinkLocal},
	{netip.MustParsePrefix("fec0::/10"), Private}, // site-local (deprecated)
	{netip.MustParsePrefix("ff00::/8"), Multicast},
}

var (
	v4Compatible = netip.MustParsePrefix("::/96")             // ::a.b.c.d (deprecated)
	v4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")   // SIIT ::ffff:0:a.b.c.d
	nat64        = netip.MustParsePrefix("64:ff9b::/96")      // RFC 6052 well-known prefix
	sixToFour    = netip.MustParsePrefix("2002::/16")         // 6to4: 2002:AABB:CCDD::
	teredo       = netip.MustParsePrefix("2001::/32")         // server at 32-63, client ^ 1s at 96-127
	globalV6     = netip.MustParsePrefix("2000::/3")          // global unicast
	embedsV4     = []netip.Prefix{v4Compatible, v4Translated} // never routable: refused even for a public v4
)

// Classify returns the class of a destination address. IPv6 forms that embed an IPv4
// address (IPv4-mapped and -compatible, SIIT, NAT64, 6to4, Teredo) are classified by the
// embedded address, so that ::ffff:127.0.0.1 or 64:ff9b::a00:1 is not public. An address
// with a zone is link-local by nature; the invalid Addr is Reserved.
func Classify(a netip.Addr) Class {
	switch {
	case !a.IsValid():
		return Reserved
	case a.Is4():
		return classifyV4(a)
	case a.Is4In6():
		return classifyV4(a.Unmap())
	}
	a = a.WithZone("")
	b := a.As16()
	for _, p := range embedsV4 {
		if p.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback() {
			if c := classifyV4(v4At(b, 12)); c != Public {
				return c
			}
			return Reserved
		}
	}
	switch {
	case nat64.Contains(a):
		return classifyV4(v4At(b, 12))
	case sixToFour.Contains(a):
		return classifyV4(v4At(b, 2))
	case teredo.Contains(a):
		if c := classifyV4(v4At(b, 4)); c != Public {
			return c
		}
		client := v4At(b, 12).As4()
		for i := range client {
			client[i] ^= 0xff
		}
		return classifyV4(netip.AddrFrom4(client))
	}
	for _, pc := range v6Classes {
		if pc.p.Contains(a) {
			return pc.c
		}
	}
	if !globalV6.Contains(a) {
		return Reserved
	}
	return Public
}

func classifyV4(a netip.Addr) Class {
	for _, pc := range v4Classes {
		if pc.p.Contains(a) {
			return pc.c
		}
	}
	return Public
}

// v4At is the IPv4 address in b[i:i+4].
func v4At(b [16]byte, i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }

// errBadHost means a host is neither a clean host name nor an IP address.
var errBadHost = errors.New("not a valid host name or IP address")

// parseHost checks a host as a browser sent it to the proxy (without port or brackets)
// and returns it as an IP address, or as a lower-case host name. Chromium sends IP
// addresses in canonical form (http://2130706433/ and http://0x7f.1/ become 127.0.0.1);
// anything else that would read as an address is refused rather than handed to a
// resolver that may parse it the inet_aton way: a name whose last label is a number
// (decimal or 0x-hex, the WHATWG URL Standard's "ends in a number"), IPv4 with leading
// zeros, addresses with zones, and names that are not ASCII letters, digits, '-', '_'
// in dot-separated labels of at most 63 bytes (253 in all; one trailing dot allowed).
func parseHost(h string) (name string, addr netip.Addr, err error) {
	if h == "" || len(h) > 254 {
		return "", netip.Addr{}, errBadHost
	}
	if strings.Contains(h, ":") { // only IPv6 literals have colons
		a, err := netip.ParseAddr(h)
		if err != nil || a.Zone() != "" || !a.Is6() {
			return "", netip.Addr{}, errBadHost
		}
		return "", a, nil
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return "", a, nil // a dotted quad without leading zeros
	}
	name = strings.ToLower(strings.TrimSuffix(h, "."))
	if name == "" || len(name) > 253 {
		return "", netip.Addr{}, errBadHost
	}
	var last string
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 {
			return "", netip.Addr{}, errBadHost
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", netip.Addr{}, errBadHost
			}
		}
		last = label
	}
	if endsInNumber(last) {
		return "", netip.Addr{}, errBadHost
	}
	return strings.ToLower(h), netip.Addr{}, nil
}

// endsInNumber reports whether a last label reads as an IPv4 number: all decimal
// digits, or 0x followed by hex digits (WHATWG URL Standard, "ends in a number checker").
func endsInNumber(label string) bool {
	if rest, ok := strings.CutPrefix(label, "0x"); ok {
		label = rest
		for i := 0; i < len(label); i++ {
			if c := label[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if c := label[i]; c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isLocalhost reports whether a host name is localhost or under .localhost, which
// always mean loopback (RFC 6761 §6.3) whatever a resolver says.
func isLocalhost(name string) bool {
	name = strings.TrimSuffix(name, ".")
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}
