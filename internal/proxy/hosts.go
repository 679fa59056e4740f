package proxy

import (
	"bufio"
	_ "embed" // adhosts.txt
	"fmt"
	"strings"
)

// adHostsList is the ad-server host list, one host a line, made by scripts/adhosts.sh
// from EasyList as shipped in a pinned Debian package (see the file's header).
//
//go:embed adhosts.txt
var adHostsList string

// HostSet is a set of domains that matches a host when the host or one of its parent
// domains is in the set: ads.example.com matches a.ads.example.com, not bads.example.com.
type HostSet struct {
	hosts map[string]struct{}
}

// NewHostSet returns the set of the given domains (lower-case, no leading dot).
func NewHostSet(domains []string) *HostSet {
	s := &HostSet{hosts: make(map[string]struct{}, len(domains))}
	for _, d := range domains {
		d = strings.Trim(strings.ToLower(strings.TrimSpace(d)), ".")
		if d != "" {
			s.hosts[d] = struct{}{}
		}
	}
	return s
}

// AdHosts parses the embedded ad-server list.
func AdHosts() (*HostSet, error) {
	var domains []string
	sc := bufio.NewScanner(strings.NewReader(adHostsList))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.ContainsAny(t, " \t/:*^$") {
			return nil, fmt.Errorf("adhosts.txt:%d: not a host name: %q", line, t)
		}
		domains = append(domains, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("adhosts.txt: %w", err)
	}
	return NewHostSet(domains), nil
}

// Len is the number of domains in the set.
func (s *HostSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.hosts)
}

// Contains reports whether host or a parent domain of it is in the set. A nil set
// contains nothing.
func (s *HostSet) Contains(host string) bool {
	if s == nil || len(s.hosts) == 0 {
		return false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for {
		if _, ok := s.hosts[host]; ok {
			return true
		}
		_, parent, ok := strings.Cut(host, ".")
		if !ok {
			return false
		}
		host = parent
	}
}
