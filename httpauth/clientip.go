package httpauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Forwarding headers a [ClientIPSource] can read. Any other header name is
// read as a single-IP header (one line holding one address), such as
// CF-Connecting-IP, True-Client-IP or Fly-Client-IP.
const (
	HeaderForwarded     = "Forwarded"       // RFC 7239 list: for=… elements
	HeaderXForwardedFor = "X-Forwarded-For" // list of addresses
	HeaderXRealIP       = "X-Real-IP"       // single address
)

// A ClientIPSource finds a request's client address from one declared
// source: the connection's peer ([http.Request.RemoteAddr]), or, when the
// peer is one of the host's trusted proxies, the one header those proxies
// set. Build it with [NewClientIPSource]; the zero value reads the peer only
// and no header at all. A ClientIPSource is immutable and safe for
// concurrent use.
//
// Every address it returns is canonical (IPv4-mapped IPv6 unmapped, no
// zone) and never inside a trusted prefix. The zero [netip.Addr] means the
// address is unknown: a token with an IP filter is then denied, never
// matched against a guess.
type ClientIPSource struct {
	header  string // canonical header name; "" reads the peer only
	kind    headerKind
	trusted []netip.Prefix
}

type headerKind uint8

const (
	singleIP headerKind = iota // one line, one address
	xffList                    // X-Forwarded-For
	fwdList                    // Forwarded
)

// notAddressHeaders are headers that never carry a client address, refused
// as a source so a typo or a mix-up fails at construction.
var notAddressHeaders = []string{
	"Authorization", "Cookie", "Host", "Via", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Prefix", "Proxy-Authorization",
}

// NewClientIPSource returns the source for a host behind proxies: header is
// the one header the proxies set ([HeaderXForwardedFor], [HeaderForwarded],
// [HeaderXRealIP], or another single-IP header such as CF-Connecting-IP;
// case-insensitive), and trusted are the proxies' prefixes (copied; at
// least one, none trusting every address). It reads header only when the
// connection's peer is in trusted, and never reads any other forwarding
// header:
//
//   - A list header (X-Forwarded-For, Forwarded): all its lines form one
//     list, walked from the right; trusted addresses are skipped and the
//     first untrusted one is the client. A malformed entry reached by the
//     walk (garbage, an unterminated quote, Forwarded's "unknown" or an
//     obfuscated "_name", an element without for=) ends it: the address is
//     unknown. Empty list elements are skipped (RFC 9110 §5.6.1).
//     Forwarded parameter names are case-insensitive (FOR=); its nodes
//     follow RFC 7239 (IPv4, or a quoted "[IPv6]", each with an optional
//     port); X-Forwarded-For entries are addresses with optional ports.
//   - A single-IP header must have exactly one line holding one address
//     (with an optional port).
//
// The address is also unknown when the header is missing, or every entry is
// trusted. A request from an untrusted peer gets the peer's address.
func NewClientIPSource(header string, trusted ...netip.Prefix) (*ClientIPSource, error) {
	if header == "" {
		return nil, errors.New("httpauth: no header: name the one header your proxies set " +
			"(X-Forwarded-For, Forwarded, X-Real-IP or a single-IP header such as CF-Connecting-IP)")
	}
	if !validFieldName(header) {
		return nil, fmt.Errorf("httpauth: header %q is not a valid field name", header)
	}
	s := &ClientIPSource{header: http.CanonicalHeaderKey(header)}
	if slices.Contains(notAddressHeaders, s.header) {
		return nil, fmt.Errorf("httpauth: header %s carries no client address: name the header your proxies put the client's address in", s.header)
	}
	switch s.header {
	case HeaderXForwardedFor:
		s.kind = xffList
	case HeaderForwarded:
		s.kind = fwdList
	}
	if len(trusted) == 0 {
		return nil, fmt.Errorf("httpauth: no trusted proxies: name the prefixes of the proxies that set %s", s.header)
	}
	for _, p := range trusted {
		if !p.IsValid() {
			return nil, fmt.Errorf("httpauth: invalid trusted prefix %v", p)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 { // addresses are unmapped before matching
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("httpauth: trusted prefix %v trusts every address, so no client address could be known", p)
		}
		s.trusted = append(s.trusted, p.Masked())
	}
	return s, nil
}

// ClientIP returns the client address of r (the zero Addr if unknown); see
// [NewClientIPSource] for the rules. It does not allocate.
func (s *ClientIPSource) ClientIP(r *http.Request) netip.Addr {
	peer := parseAddr(r.RemoteAddr, false)
	if s == nil || s.header == "" || !peer.IsValid() || !s.trusts(peer) {
		return peer
	}
	lines := r.Header[s.header]
	switch s.kind {
	case xffList:
		return s.walkXFF(lines)
	case fwdList:
		return s.walkForwarded(lines)
	}
	if len(lines) != 1 {
		return netip.Addr{} // missing, or added to instead of set: ambiguous
	}
	a := parseAddr(trimOWS(lines[0]), false)
	if s.trusts(a) {
		return netip.Addr{}
	}
	return a
}

// String describes the source, e.g. "X-Forwarded-For from [10.0.0.0/8]" or
// "peer".
func (s *ClientIPSource) String() string {
	if s == nil || s.header == "" {
		return "peer"
	}
	return fmt.Sprintf("%s from %v", s.header, s.trusted)
}

func (s *ClientIPSource) trusts(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walkXFF walks X-Forwarded-For lines from the right.
func (s *ClientIPSource) walkXFF(lines []string) netip.Addr {
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		for end := len(v); end >= 0; {
			start := strings.LastIndexByte(v[:end], ',') + 1
			entry := trimOWS(v[start:end])
			end = start - 1
			if entry == "" {
				continue
			}
			a := parseAddr(entry, false)
			if !a.IsValid() || !s.trusts(a) {
				return a
			}
		}
	}
	return netip.Addr{}
}

// maxElements bounds the Forwarded elements of one line a walk reads: it
// needs one per trusted proxy hop, and a line with more elements than that
// keeps only its last ones in mind.
const maxElements = 64

// walkForwarded walks Forwarded lines from the right. A line is split into
// elements left to right (commas inside quoted strings do not split),
// remembering the bounds of its last maxElements, which are then read from
// the right. A walk that would need an element before those ends unknown.
func (s *ClientIPSource) walkForwarded(lines []string) netip.Addr {
	var ring [maxElements][2]int
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		n := splitElements(v, &ring)
		for j := n - 1; j >= max(0, n-maxElements); j-- {
			sp := ring[j%maxElements]
			elem := trimOWS(v[sp[0]:sp[1]])
			if elem == "" {
				continue
			}
			a := forwardedFor(elem)
			if !a.IsValid() || !s.trusts(a) {
				return a
			}
		}
		if n > maxElements {
			return netip.Addr{}
		}
	}
	return netip.Addr{}
}

// splitElements records the bounds of the comma-separated elements of a
// Forwarded line in ring (element k at k mod maxElements) and returns how
// many there are. An unterminated quoted string runs to the end of the line
// (its element is then malformed).
func splitElements(v string, ring *[maxElements][2]int) int {
	n, start, quoted := 0, 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			ring[n%maxElements] = [2]int{start, i}
			n++
			start = i + 1
		}
	}
	ring[n%maxElements] = [2]int{start, len(v)}
	return n + 1
}

// forwardedFor returns the address of the for= parameter of one Forwarded
// element, or the zero Addr if the element is malformed, has no for= (or
// two), or its node is not an address ("unknown", "_hidden").
func forwardedFor(elem string) netip.Addr {
	var addr netip.Addr
	seen := false
	for elem != "" && elem[0] == ';' { // leading empty pairs
		elem = trimOWS(elem[1:])
	}
	for elem != "" {
		// pair = token "=" ( token / quoted-string ), pairs split by ";"
		// with optional whitespace around the ";".
		name, rest, ok := strings.Cut(elem, "=")
		if !ok || !isToken(name) || rest == "" {
			return netip.Addr{}
		}
		var value string
		if rest[0] == '"' {
			end, escaped := quotedEnd(rest)
			if end < 0 {
				return netip.Addr{} // unterminated
			}
			value, rest = rest[1:end], rest[end+1:]
			if escaped {
				value = "\\" // an address never needs escapes
			}
		} else {
			end := strings.IndexByte(rest, ';')
			if end < 0 {
				end = len(rest)
			}
			value, rest = trimRightOWS(rest[:end]), rest[end:]
			if !isToken(value) {
				return netip.Addr{}
			}
		}
		rest = trimOWS(rest)
		if rest != "" {
			if rest[0] != ';' {
				return netip.Addr{}
			}
			rest = trimOWS(rest[1:])
		}
		elem = rest
		if strings.EqualFold(name, "for") {
			if seen {
				return netip.Addr{} // a parameter occurs at most once (RFC 7239 §4)
			}
			seen = true
			addr = parseAddr(value, true)
			if !addr.IsValid() {
				return netip.Addr{}
			}
		}
		for elem != "" && elem[0] == ';' { // empty pairs
			elem = trimOWS(elem[1:])
		}
	}
	return addr
}

// quotedEnd returns the index of the quote closing the quoted string that
// s starts with (-1 if none), and whether it holds a quoted-pair.
func quotedEnd(s string) (int, bool) {
	escaped := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i, escaped
		}
	}
	return -1, escaped
}

// parseAddr parses "v4", "v4:port", "[v6]" or "[v6]:port", and also a bare
// "v6" unless forwarded (RFC 7239 nodes, where the port may be obfuscated,
// "_x"). It returns the canonical address (unmapped, no zone), or the zero
// Addr for anything else.
func parseAddr(s string, forwarded bool) netip.Addr {
	if s == "" || len(s) > 64 {
		return netip.Addr{}
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || (end+1 < len(s) && (s[end+1] != ':' || !validPort(s[end+2:], forwarded))) {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return netip.Addr{}
		}
		return canonical(a)
	}
	host, port, hasPort := strings.Cut(s, ":")
	if hasPort && strings.IndexByte(port, ':') >= 0 { // a bare IPv6 address
		if forwarded {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}
		}
		return canonical(a)
	}
	if hasPort && !validPort(port, forwarded) {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}
	}
	return a
}

func canonical(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// validPort reports whether s is a port number (1–5 digits, at most 65535)
// or, in a Forwarded node, an obfuscated port ("_" and ALPHA / DIGIT / "." /
// "_" / "-").
func validPort(s string, forwarded bool) bool {
	if forwarded && len(s) > 1 && s[0] == '_' {
		for i := 1; i < len(s); i++ {
			if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return false
			}
		}
		return true
	}
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n <= 65535
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func validFieldName(s string) bool { return isToken(s) }

func trimOWS(s string) string { return strings.Trim(s, " \t") }

func trimRightOWS(s string) string { return strings.TrimRight(s, " \t") }
