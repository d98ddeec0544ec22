package edge

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

type trustMode uint8

const (
	trustNone  trustMode = iota // never believe X-Forwarded-For
	trustAll                    // believe all of it: the left-most valid address
	trustHops                   // believe the last hops entries
	trustCIDRs                  // believe hops inside trusted prefixes
)

// maxTrustHops bounds the hop count of COLLECTOR_TRUST_PROXY.
const maxTrustHops = 1 << 16

// TrustProxy decides when X-Forwarded-For is believed (COLLECTOR_TRUST_PROXY).
// The zero value never believes it.
type TrustProxy struct {
	mode     trustMode
	hops     int
	prefixes []netip.Prefix // canonical: masked, IPv4 as IPv4 (never 4-in-6)
}

// ParseTrustProxy parses a COLLECTOR_TRUST_PROXY value:
//
//   - "" or "false" (or "0"): never; the client is the socket peer.
//   - "true": trust every hop; the client is the left-most valid address of
//     X-Forwarded-For. Any client can then choose its own address: use it only
//     when every request reaches the collector through a proxy that overwrites
//     (not appends to) X-Forwarded-For.
//   - a hop count N ≥ 1: N proxies are in front of the collector; the client is
//     the Nth address from the right of X-Forwarded-For (the left-most if there
//     are fewer than N).
//   - a comma-separated list of CIDR prefixes and/or single addresses: the
//     trusted proxies. X-Forwarded-For is consulted only when the socket peer is
//     trusted; it is walked right to left while the hop is trusted, and the
//     first untrusted address is the client.
//
// true/false are case-insensitive; surrounding spaces are ignored.
func ParseTrustProxy(s string) (TrustProxy, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "false", "0":
		return TrustProxy{}, nil
	case "true":
		return TrustProxy{mode: trustAll}, nil
	}
	if isSignedInteger(s) {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil || n > maxTrustHops:
			return TrustProxy{}, fmt.Errorf("COLLECTOR_TRUST_PROXY: hop count %q out of range (1..%d)", s, maxTrustHops)
		case n < 0:
			return TrustProxy{}, fmt.Errorf("COLLECTOR_TRUST_PROXY: hop count %q is negative", s)
		}
		if n == 0 {
			return TrustProxy{}, nil // zero trusted proxies: never
		}
		return TrustProxy{mode: trustHops, hops: n}, nil
	}
	var prefixes []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return TrustProxy{}, fmt.Errorf("COLLECTOR_TRUST_PROXY: empty entry in %q", s)
		}
		p, err := parseTrustedPrefix(part)
		if err != nil {
			return TrustProxy{}, fmt.Errorf("COLLECTOR_TRUST_PROXY: %q is not true, false, a hop count or a CIDR/IP list: %w", part, err)
		}
		prefixes = append(prefixes, p)
	}
	return TrustProxy{mode: trustCIDRs, prefixes: prefixes}, nil
}

func isSignedInteger(s string) bool {
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseTrustedPrefix parses "10.0.0.0/8", "2001:db8::/32" or a single address
// ("10.1.2.3" is 10.1.2.3/32). An IPv4-mapped prefix (::ffff:10.0.0.0/104) is
// turned into its IPv4 form, since addresses are unmapped before matching.
func parseTrustedPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		bits := p.Bits() - 96
		if bits < 0 {
			return netip.Prefix{}, errors.New("IPv4-mapped prefix shorter than /96")
		}
		p = netip.PrefixFrom(a.Unmap(), bits)
	}
	return p.Masked(), nil
}

// String describes the setting (for startup logs).
func (t TrustProxy) String() string {
	switch t.mode {
	case trustAll:
		return "true"
	case trustHops:
		return strconv.Itoa(t.hops)
	case trustCIDRs:
		parts := make([]string, len(t.prefixes))
		for i, p := range t.prefixes {
			parts[i] = p.String()
		}
		return strings.Join(parts, ",")
	}
	return "false"
}

func (t TrustProxy) trusted(a netip.Addr) bool {
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the client address given the socket peer and the raw
// X-Forwarded-For header value(s) (nil when absent; several headers joined with
// ","). All addresses are returned unmapped (::ffff:1.2.3.4 becomes 1.2.3.4) and
// without zone.
//
// Entries are trimmed of spaces and tabs; empty entries are skipped. A port
// ("1.2.3.4:5678") or brackets ("[::1]", "[::1]:80") are stripped; a zone is
// dropped. Anything else that is not an IP address ("unknown", host names,
// "1.2.3.4 5.6.7.8") is garbage: wherever the walk has to rely on a garbage hop,
// ClientIP falls back to the socket peer.
//
// ClientIP does not allocate.
func (t TrustProxy) ClientIP(peer netip.Addr, xff []byte) netip.Addr {
	peer = peer.Unmap().WithZone("")
	switch t.mode {
	case trustAll:
		// Left to right: the first valid address.
		for rest := xff; len(rest) > 0; {
			var e []byte
			if i := bytes.IndexByte(rest, ','); i >= 0 {
				e, rest = rest[:i], rest[i+1:]
			} else {
				e, rest = rest, nil
			}
			if a, ok := parseHop(e); ok {
				return a
			}
		}
		return peer

	case trustHops:
		// Right to left: the hops-th entry; all entries on the way must be valid.
		var last netip.Addr
		n := 0
		for rest := xff; ; {
			e, more := cutLastXFF(&rest)
			if !more {
				break
			}
			if isBlankXFF(e) {
				continue
			}
			a, ok := parseHop(e)
			if !ok {
				return peer
			}
			last = a
			if n++; n == t.hops {
				return a
			}
		}
		if n == 0 {
			return peer
		}
		return last // fewer than hops entries: the left-most

	case trustCIDRs:
		if !t.trusted(peer) {
			return peer
		}
		cur := peer
		for rest := xff; ; {
			e, more := cutLastXFF(&rest)
			if !more {
				return cur // every hop trusted: the left-most one
			}
			if isBlankXFF(e) {
				continue
			}
			a, ok := parseHop(e)
			if !ok {
				return peer
			}
			if !t.trusted(a) {
				return a
			}
			cur = a
		}
	}
	return peer
}

// cutLastXFF cuts the right-most comma-separated entry off *rest. more is false
// when *rest held nothing left to cut.
func cutLastXFF(rest *[]byte) (e []byte, more bool) {
	b := *rest
	if b == nil {
		return nil, false
	}
	if i := bytes.LastIndexByte(b, ','); i >= 0 {
		*rest = b[:i:i]
		return b[i+1:], true
	}
	*rest = nil
	return b, true
}

func isBlankXFF(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// maxHopLen bounds the text of one X-Forwarded-For entry: the longest address
// with brackets, zone and port fits easily.
const maxHopLen = 128

// parseHop parses one X-Forwarded-For entry into an unmapped, zone-less
// address. It accepts "addr", "ipv4:port", "[ipv6]" and "[ipv6]:port", with
// surrounding spaces and tabs.
func parseHop(b []byte) (netip.Addr, bool) {
	b = bytes.Trim(b, " \t")
	if len(b) == 0 || len(b) > maxHopLen {
		return netip.Addr{}, false
	}
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || !isPortSuffix(b[end+1:], true) {
			return netip.Addr{}, false
		}
		b = b[1:end]
	} else if i := bytes.IndexByte(b, ':'); i >= 0 && bytes.IndexByte(b[i+1:], ':') < 0 {
		// Exactly one colon: IPv4 address (or garbage) with a port. An IPv6
		// address always has at least two colons.
		if !isPortSuffix(b[i:], false) {
			return netip.Addr{}, false
		}
		b = b[:i]
	}
	if i := bytes.IndexByte(b, '%'); i >= 0 {
		b = b[:i] // zones are meaningless in a forwarded address
	}
	a, ok := parseIPText(b)
	if !ok {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isPortSuffix reports whether b is ":digits" (1-5 digits, ≤ 65535), or empty when
// allowEmpty.
func isPortSuffix(b []byte, allowEmpty bool) bool {
	if len(b) == 0 {
		return allowEmpty
	}
	if b[0] != ':' || len(b) < 2 || len(b) > 6 {
		return false
	}
	n := 0
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= math.MaxUint16
}

// parseIPText parses an IPv4 or IPv6 address without zone. It accepts exactly
// what netip.ParseAddr accepts for such input, but takes bytes and does not
// allocate on malformed input (netip.ParseAddr allocates its error).
func parseIPText(s []byte) (netip.Addr, bool) {
	for _, c := range s {
		switch c {
		case '.':
			var f [4]byte
			if !parseIPv4Text(s, f[:]) {
				return netip.Addr{}, false
			}
			return netip.AddrFrom4(f), true
		case ':':
			return parseIPv6Text(s)
		}
	}
	return netip.Addr{}, false
}

// parseIPv4Text parses dotted decimal "a.b.c.d" into f, with the rules of
// net/netip: four non-empty decimal fields ≤ 255 without leading zeros.
func parseIPv4Text(s []byte, f []byte) bool {
	val, pos, digits := 0, 0, 0
	for i, c := range s {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if i == 0 || i == len(s)-1 || s[i-1] == '.' || pos == 3 {
				return false
			}
			f[pos] = byte(val)
			pos++
			val, digits = 0, 0
		default:
			return false
		}
	}
	if pos < 3 {
		return false
	}
	f[3] = byte(val)
	return true
}

// parseIPv6Text parses an IPv6 address without zone with the rules of net/netip.
func parseIPv6Text(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1 // position of "::" in ip
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, uint32(0)
	group:
		for ; off < len(s); off++ {
			c := s[off]
			switch {
			case '0' <= c && c <= '9':
				acc = acc<<4 + uint32(c-'0')
			case 'a' <= c && c <= 'f':
				acc = acc<<4 + uint32(c-'a'+10)
			case 'A' <= c && c <= 'F':
				acc = acc<<4 + uint32(c-'A'+10)
			default:
				break group
			}
			if off > 3 {
				return netip.Addr{}, false // more than 4 hex digits
			}
		}
		if off == 0 {
			return netip.Addr{}, false // empty group
		}
		if off < len(s) && s[off] == '.' {
			// Trailing embedded IPv4: must replace the last two groups.
			if (ellipsis < 0 && i != 12) || i+4 > 16 {
				return netip.Addr{}, false
			}
			if !parseIPv4Text(s, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			s = nil
			i += 4
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // second "::"
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false // trailing garbage
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false // too short
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}
