package s3blob

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	bb "github.com/browserd/browserd"
)

// Location is where a Store keeps its objects: what an s3:// URL names. It holds no
// credentials (they come from the environment, Config), so it is safe to log.
type Location struct {
	// Bucket is the bucket's name (S3 naming rules: 3–63 of a-z 0-9 . -).
	Bucket string
	// Prefix is prepended to every key: "" or a clean relative path ending in "/".
	Prefix string
	// Endpoint is the S3 service's host:port; "" is AWS (s3.amazonaws.com).
	Endpoint string
	// Secure is true for https endpoints (and AWS).
	Secure bool
	// Region is the bucket's region ["us-east-1"].
	Region string
}

// PathStyle reports whether requests name the bucket in the path (http://host/bucket/key)
// rather than in the host name: every endpoint but AWS's own, since S3-compatible
// servers (SeaweedFS, MinIO, Ceph) rarely have a DNS name per bucket.
func (l Location) PathStyle() bool {
	host, _, err := net.SplitHostPort(l.Endpoint)
	if err != nil {
		host = l.Endpoint
	}
	return l.Endpoint != "" && !strings.HasSuffix(host, ".amazonaws.com")
}

// String returns the location as an s3:// URL, which ParseURL reads back.
func (l Location) String() string {
	u := url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Prefix}
	q := url.Values{}
	if l.Endpoint != "" {
		scheme := "http"
		if l.Secure {
			scheme = "https"
		}
		q.Set("endpoint", scheme+"://"+l.Endpoint)
	}
	if l.Region != "" {
		q.Set("region", l.Region)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// IsURL reports whether a --blob-store value names S3 (s3://…) rather than a directory.
func IsURL(s string) bool { return strings.HasPrefix(s, "s3://") }

// ParseURL reads s3://BUCKET[/PREFIX][?endpoint=http(s)://HOST[:PORT]][&region=REGION].
// It is strict: an unknown or repeated parameter, credentials in the URL, a bucket name
// S3 refuses, a prefix that is not a clean relative path, or an endpoint that is not a
// bare http(s) origin are errors that say what is wrong.
func ParseURL(s string) (Location, error) {
	var l Location
	u, err := url.Parse(s)
	if err != nil {
		return l, fmt.Errorf("blob store %q is not a URL: %w", redact(s), errors.Unwrap(err))
	}
	switch {
	case u.Scheme != "s3":
		return l, fmt.Errorf("blob store URL must start with s3://, got %q", redact(s))
	case u.Opaque != "":
		return l, errors.New("blob store URL must be s3://BUCKET[/PREFIX]")
	case u.User != nil:
		return l, errors.New("blob store URL must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return l, errors.New("blob store URL must not have a #fragment")
	}
	if err := checkBucket(u.Host); err != nil {
		return l, err
	}
	l.Bucket = u.Host
	if p := strings.TrimPrefix(u.Path, "/"); p != "" {
		p = strings.TrimSuffix(p, "/")
		if !bb.ValidBlobKey(p) || strings.ContainsAny(p, "?#%") {
			return l, fmt.Errorf("blob store prefix %q must be a clean relative path (no empty, . or .. segments)", u.Path)
		}
		l.Prefix = p + "/"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return l, fmt.Errorf("blob store URL query: %w", err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return l, fmt.Errorf("blob store URL: %s given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			if l.Endpoint, l.Secure, err = parseEndpoint(v[0]); err != nil {
				return l, err
			}
		case "region":
			if err := checkRegion(v[0]); err != nil {
				return l, err
			}
			l.Region = v[0]
		default:
			return l, fmt.Errorf("blob store URL: unknown parameter %q (known: endpoint, region)", k)
		}
	}
	if l.Endpoint == "" {
		l.Secure = true // AWS
	}
	return l, nil
}

// redact cuts what may be credentials out of a URL shown in an error.
func redact(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

func checkBucket(b string) error {
	bad := func(why string) error {
		return fmt.Errorf("blob store bucket %q: %s (S3 bucket names are 3 to 63 characters of a-z, 0-9, '.' and '-')", b, why)
	}
	if len(b) < 3 || len(b) > 63 {
		return bad("wrong length")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("invalid character")
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return bad("must begin and end with a letter or digit")
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return bad("dots must separate labels")
	}
	if net.ParseIP(b) != nil {
		return bad("must not look like an IP address")
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func checkRegion(r string) error {
	if r == "" || len(r) > 32 {
		return fmt.Errorf("blob store region %q must be 1 to 32 characters", r)
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; !(isAlnum(c) || c == '-') {
			return fmt.Errorf("blob store region %q may hold only a-z, 0-9 and '-'", r)
		}
	}
	return nil
}

// parseEndpoint reads http(s)://HOST[:PORT] and returns HOST[:PORT] and whether it is https.
func parseEndpoint(s string) (hostPort string, secure bool, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", false, fmt.Errorf("blob store endpoint %q is not a URL", redact(s))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", false, fmt.Errorf("blob store endpoint %q must be http://HOST[:PORT] or https://HOST[:PORT]", redact(s))
	case u.User != nil:
		return "", false, errors.New("blob store endpoint must not carry credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	case u.Host == "" || u.Hostname() == "":
		return "", false, fmt.Errorf("blob store endpoint %q has no host", s)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return "", false, fmt.Errorf("blob store endpoint %q must be a bare origin (no path or query)", s)
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscan(p, &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
			return "", false, fmt.Errorf("blob store endpoint %q: bad port", s)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return "", false, fmt.Errorf("blob store endpoint %q: empty port", s)
	}
	return u.Host, u.Scheme == "https", nil
}
