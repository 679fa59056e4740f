package browserd

import (
	"strconv"
	"strings"
	"time"
)

// LiveGrant is what a live view token grants (spec §3.5, §4.3): watching one session's
// browser until Expires and, unless ReadOnly, driving it and opening DevTools on it.
type LiveGrant struct {
	SessionID string
	Expires   time.Time // second precision
	ReadOnly  bool
}

// maxLiveTokenLen bounds the tokens ParseLiveToken looks at: real ones are about 100
// characters.
const maxLiveTokenLen = 256

const livePurpose = "live-view"

// LiveToken returns a token for g, "lv1.<session id>.<expiry, unix s>.<rw|ro>.<MAC>",
// usable in a URL path or query without escaping. Only this Signer's secret can make
// one, and altering any part of it breaks the MAC.
func (s *Signer) LiveToken(g LiveGrant) string {
	mode := "rw"
	if g.ReadOnly {
		mode = "ro"
	}
	return s.Sign(livePurpose, "lv1."+g.SessionID+"."+strconv.FormatInt(g.Expires.Unix(), 10)+"."+mode)
}

// ParseLiveToken returns the grant of a token made by LiveToken. A token this Signer
// did not make, or one that has expired at now, is a CodeUnauthorized error whose
// message says which.
func (s *Signer) ParseLiveToken(token string, now time.Time) (LiveGrant, error) {
	invalid := Errorf(CodeUnauthorized, "invalid live view token")
	if len(token) > maxLiveTokenLen {
		return LiveGrant{}, invalid
	}
	msg, ok := s.Verify(livePurpose, token)
	if !ok {
		return LiveGrant{}, invalid
	}
	parts := strings.Split(msg, ".")
	if len(parts) != 4 || parts[0] != "lv1" || !ValidID(parts[1]) || (parts[3] != "rw" && parts[3] != "ro") {
		return LiveGrant{}, invalid // a MAC over another format: only a changed secret or purpose gets here
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return LiveGrant{}, invalid
	}
	g := LiveGrant{SessionID: parts[1], Expires: time.Unix(exp, 0).UTC(), ReadOnly: parts[3] == "ro"}
	if !now.Before(g.Expires) {
		return LiveGrant{}, Errorf(CodeUnauthorized, "live view link expired at %s", g.Expires.Format(time.RFC3339))
	}
	return g, nil
}
