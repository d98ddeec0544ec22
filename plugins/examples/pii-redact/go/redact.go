package main

import "bytes"

// The redaction scanner: one left-to-right pass over UTF-8 text that copies
// it to an output buffer, replacing each match with a marker. Matches are
// pure ASCII, so multi-byte characters are always copied whole. The rules
// are those of the AssemblyScript version of this plugin (../assembly),
// listed in README.md; the comment on each matcher says the same in code
// terms.

// Character classes.
const (
	cDigit  = 1 << iota
	cUpper  // A-Z
	cLower  // a-z
	cHex    // 0-9 A-F a-f
	cLocal  // e-mail local part: A-Z a-z 0-9 . _ % + -
	cWord   // A-Z a-z 0-9 _ -
	cBearer // bearer token: A-Z a-z 0-9 - . _ ~ + / =
	cParam  // query parameter name: A-Z a-z 0-9 _ . - [ ] %

	cAlpha = cUpper | cLower
	cAlnum = cDigit | cUpper | cLower
)

var classes = func() (t [256]uint8) {
	for c := 0; c < 128; c++ {
		var f uint8
		switch {
		case c >= '0' && c <= '9':
			f |= cDigit | cHex | cLocal | cWord | cBearer | cParam
		case c >= 'A' && c <= 'Z':
			f |= cUpper | cLocal | cWord | cBearer | cParam
		case c >= 'a' && c <= 'z':
			f |= cLower | cLocal | cWord | cBearer | cParam
		}
		if c >= 'A' && c <= 'F' || c >= 'a' && c <= 'f' {
			f |= cHex
		}
		switch c {
		case '_', '-':
			f |= cLocal | cWord | cBearer | cParam
		case '.':
			f |= cLocal | cBearer | cParam
		case '%':
			f |= cLocal | cParam
		case '+':
			f |= cLocal | cBearer
		case '~', '/', '=':
			f |= cBearer
		case '[', ']':
			f |= cParam
		}
		t[c] = f
	}
	return t
}()

// presence marks the bytes whose presence in a text decides which rules
// can match at all (a table, so that the pass over the text is free of
// branches).
const (
	pDigit = 1 << iota // must be 1: it is also the digit count's increment
	pAt
	pColon
	pPercent
)

var presence = [256]uint8{'0': pDigit, '1': pDigit, '2': pDigit, '3': pDigit, '4': pDigit, '5': pDigit,
	'6': pDigit, '7': pDigit, '8': pDigit, '9': pDigit, '@': pAt, ':': pColon, '%': pPercent}

// DefaultDenyParams are the query parameter names whose values are
// redacted unless the config says otherwise.
var DefaultDenyParams = []string{"token", "access_token", "api_key", "apikey", "key", "password", "secret", "email", "session", "sid", "auth"}

// Options select the rules; all are on by default.
type Options struct {
	Emails, Phones, IPs, Cards, Tokens, Secrets, Params bool
	DenyParams                                          []string // lower-case names
}

// DefaultOptions has every rule on and the default deny-list.
func DefaultOptions() Options {
	return Options{Emails: true, Phones: true, IPs: true, Cards: true, Tokens: true, Secrets: true, Params: true,
		DenyParams: DefaultDenyParams}
}

// pad is how far past the end of the text the matchers may look: they see
// zero bytes there, which are in no class and end every run.
const pad = 16

// Redactor redacts text. It owns reusable buffers: one Redactor serves one
// caller at a time.
type Redactor struct {
	opt    Options
	padded []byte // 0, the text, pad zeros
	n      int
	out    []byte
	digits [19]uint8

	tokenStart, paramValue int // secondary results of matchBearer, matchParam
}

// NewRedactor returns a Redactor for the options.
func NewRedactor(opt Options) *Redactor { return &Redactor{opt: opt} }

// at returns the byte at i of the text, 0 outside it (i ≥ -1).
func (r *Redactor) at(i int) uint8 { return r.padded[i+1] }

func (r *Redactor) has(i int, f uint8) bool { return classes[r.padded[i+1]]&f != 0 }

func lower(c uint8) uint8 {
	if c >= 'A' && c <= 'Z' {
		return c | 0x20
	}
	return c
}

// startsWith reports whether the text at i starts with s (ASCII; any case
// when ci, s then being lower-case).
func (r *Redactor) startsWith(i int, s string, ci bool) bool {
	if i+len(s) > r.n {
		return false
	}
	for k := 0; k < len(s); k++ {
		c := r.at(i + k)
		if ci {
			c = lower(c)
		}
		if c != s[k] {
			return false
		}
	}
	return true
}

// runEnd returns the end of the run of class f starting at i.
func (r *Redactor) runEnd(i int, f uint8) int {
	for r.has(i, f) {
		i++
	}
	return i
}

// Redact returns text with every match replaced by its marker, and
// whether anything was replaced. The result is in a buffer the next call
// reuses; when nothing was replaced it is nil.
func (r *Redactor) Redact(text []byte) ([]byte, bool) {
	r.padded = append(append(append(r.padded[:0], 0), text...), make([]byte, pad)...)
	r.n = len(text)
	r.out = r.out[:0]
	n := r.n
	// What the text holds decides which rules can match at all: every
	// e-mail address has an "@" (or "%40"), every IPv6 address a colon,
	// IPv4 addresses 4 digits or more, phone numbers 7, cards 13.
	var seen uint8
	digits := 0
	for _, c := range text {
		p := presence[c]
		seen |= p
		digits += int(p & pDigit)
	}
	hasAt := seen&pAt != 0 || seen&pPercent != 0 && bytes.Contains(text, []byte("%40"))
	hasColon := seen&pColon != 0
	emails := r.opt.Emails && hasAt
	ipv4 := r.opt.IPs && digits >= 4
	ipv6 := r.opt.IPs && hasColon
	cards := r.opt.Cards && digits >= 13
	phones := r.opt.Phones && digits >= 7
	copied := 0
	changed := false
	prevWord := false // the previous byte is in [A-Za-z0-9_-]
	for i := 0; i < n; {
		c := r.at(i)
		f := classes[c]
		paramStart := c == '?' || c == '&' || c == '#' || c == ';'
		if prevWord && !paramStart {
			prevWord = f&cWord != 0
			i++
			continue
		}
		end, from, marker := -1, i, ""
		// wordEnd is the end of the [A-Za-z0-9_-] run starting here: the
		// long-key rules need 12 or more of them, and when nothing matches
		// the scan resumes after the run (no match starts inside a word).
		wordEnd := i
		if f&cWord != 0 {
			wordEnd = r.runEnd(i, cWord)
		}
		if paramStart {
			if r.opt.Params {
				if end = r.matchParam(i); end >= 0 {
					from, marker = r.paramValue, "[redacted]"
				}
			}
		} else if f != 0 || c == '+' || c == '(' || c == ':' {
			// starts of matches: letters, digits, _ - . % + ( :
			if emails && f&cLocal != 0 && !r.has(i-1, cLocal) {
				end, marker = r.matchEmail(i), "[email]"
			}
			if end < 0 && r.opt.Tokens && c|0x20 == 'b' {
				if end = r.matchBearer(i); end >= 0 {
					from, marker = r.tokenStart, "[token]"
				}
			}
			if end < 0 && r.opt.Tokens && c == 'e' {
				end, marker = r.matchJWT(i), "[token]"
			}
			if end < 0 && r.opt.Secrets && f&cAlpha != 0 && wordEnd-i >= 12 {
				end, marker = r.matchKnownKey(i), "[secret]"
			}
			if end < 0 && (f&(cDigit|cHex) != 0 || c == ':') {
				// numbers and addresses do not continue a dotted or
				// colon-separated run
				if p := r.at(i - 1); p != '.' && p != ':' && p != '+' {
					if ipv4 && f&cDigit != 0 {
						end, marker = r.matchIPv4(i), "[ip]"
					}
					if end < 0 && ipv6 && r.mayBeIPv6(i) {
						end, marker = r.matchIPv6(i), "[ip]"
					}
					if end < 0 && cards && f&cDigit != 0 {
						end, marker = r.matchCard(i), "[card]"
					}
				}
			}
			if end < 0 && phones && (f&cDigit != 0 || c == '+' || c == '(') {
				if p := r.at(i - 1); p != '.' && p != '+' {
					end, marker = r.matchPhone(i), "[phone]"
				}
			}
			if end < 0 && r.opt.Secrets && wordEnd-i >= 32 {
				end, marker = r.matchHighEntropy(i), "[secret]"
			}
		}
		if end >= 0 {
			r.out = append(r.out, text[copied:from]...)
			r.out = append(r.out, marker...)
			copied, i, changed = end, end, true
			prevWord = r.has(i-1, cWord)
			continue
		}
		if wordEnd > i {
			i, prevWord = wordEnd, true
			continue
		}
		prevWord = f&cWord != 0
		i++
	}
	if !changed {
		return nil, false
	}
	return append(r.out, text[copied:]...), true
}

// matchEmail: local part [A-Za-z0-9._%+-]+ (not starting with a dot), then
// "@" (or its URL encoding "%40"), then a domain of dot-separated
// [A-Za-z0-9-] labels whose last label is at least two letters.
func (r *Redactor) matchEmail(i int) int {
	if r.at(i) == '.' {
		return -1
	}
	j, atSign, domain := i, -1, -1
	for j < r.n {
		c := r.at(j)
		if c == '@' {
			atSign, domain = j, j+1
			break
		}
		if c == '%' && r.at(j+1) == '4' && r.at(j+2) == '0' {
			atSign, domain = j, j+3
			break
		}
		if classes[c]&cLocal == 0 {
			break
		}
		j++
	}
	if atSign <= i {
		return -1
	}
	p, end, labels := domain, -1, 0
	for {
		s := p
		for p < r.n && (r.has(p, cAlnum) || r.at(p) == '-') {
			p++
		}
		if p == s {
			break
		}
		labels++
		alpha := p-s >= 2 // a top-level domain: two letters or more
		for k := s; alpha && k < p; k++ {
			alpha = r.has(k, cAlpha)
		}
		if labels >= 2 && alpha {
			end = p
		}
		if r.at(p) != '.' {
			break
		}
		p++
	}
	return end
}

// matchBearer: "bearer" (any case, not preceded by a letter: the scan only
// starts matches at word starts), spaces, then a token of
// [A-Za-z0-9-._~+/=] at least 8 long that has a digit or one of -._~+/= or
// is at least 20 long. Only the token is replaced (tokenStart).
func (r *Redactor) matchBearer(i int) int {
	if !r.startsWith(i, "bearer", true) {
		return -1
	}
	j := i + 6
	if r.at(j) != ' ' {
		return -1
	}
	for r.at(j) == ' ' {
		j++
	}
	e := r.runEnd(j, cBearer)
	if e-j < 8 {
		return -1
	}
	if e-j < 20 {
		mixed := false
		for k := j; k < e && !mixed; k++ {
			mixed = !r.has(k, cAlpha)
		}
		if !mixed {
			return -1
		}
	}
	r.tokenStart = j
	return e
}

// matchJWT: "eyJ", then three base64url segments separated by dots, the
// first two at least 10 long.
func (r *Redactor) matchJWT(i int) int {
	if !r.startsWith(i, "eyJ", false) {
		return -1
	}
	a := r.runEnd(i, cWord)
	if a-i < 10 || r.at(a) != '.' {
		return -1
	}
	b := r.runEnd(a+1, cWord)
	if b-a-1 < 10 || r.at(b) != '.' {
		return -1
	}
	return r.runEnd(b+1, cWord)
}

// matchKnownKey: keys with a known shape, as whole [A-Za-z0-9_-] runs:
//
//	sk_live_ sk_test_ rk_live_ rk_test_ + 8 or more   (Stripe secret/restricted keys)
//	AKIA / ASIA + exactly 16 of [A-Z0-9]               (AWS access key ids)
//	ghp_ gho_ ghu_ ghs_ ghr_ + 30 or more, github_pat_ + 20 or more (GitHub tokens)
//	xoxb- xoxp- xoxa- xoxr- xoxs- + 10 or more         (Slack tokens)
//	AIza + 35                                          (Google API keys)
func (r *Redactor) matchKnownKey(i int) int {
	e := r.runEnd(i, cWord)
	n := e - i
	if n < 12 {
		return -1
	}
	switch c := r.at(i); c {
	case 's', 'r':
		if r.at(i+1) == 'k' && r.at(i+2) == '_' && (r.startsWith(i+3, "live_", false) || r.startsWith(i+3, "test_", false)) {
			if n >= 16 {
				return e
			}
			return -1
		}
	case 'A':
		if (r.startsWith(i, "AKIA", false) || r.startsWith(i, "ASIA", false)) && n == 20 {
			for k := i + 4; k < e; k++ {
				if !r.has(k, cUpper|cDigit) {
					return -1
				}
			}
			return e
		}
		if r.startsWith(i, "AIza", false) && n == 39 {
			return e
		}
	case 'g':
		if r.at(i+1) == 'h' && r.at(i+3) == '_' {
			switch r.at(i + 2) {
			case 'p', 'o', 'u', 's', 'r':
				if n >= 34 {
					return e
				}
			}
		}
		if r.startsWith(i, "github_pat_", false) && n >= 31 {
			return e
		}
	case 'x':
		if r.startsWith(i, "xox", false) && r.at(i+4) == '-' {
			switch r.at(i + 3) {
			case 'b', 'p', 'a', 'r', 's':
				if n >= 15 {
					return e
				}
			}
		}
	}
	return -1
}

// matchHighEntropy: 32 or more of [A-Za-z0-9_-], bounded by other
// characters, with at least one digit, one upper-case and one lower-case
// letter, and a change of character class (lower, upper, digit, _ or -)
// between at least 40% of adjacent pairs. Hex digests, UUIDs and
// CamelCase_identifiers do not qualify; random keys almost always do.
func (r *Redactor) matchHighEntropy(i int) int {
	e := r.runEnd(i, cWord)
	n := e - i
	if n < 32 {
		return -1
	}
	var seen, prev uint8
	changes := 0
	for k := i; k < e; k++ {
		f := classes[r.at(k)] & cAlnum
		seen |= f
		if k > i && f != prev {
			changes++
		}
		prev = f
	}
	if seen != cAlnum || changes*10 < (n-1)*4 {
		return -1
	}
	return e
}

// matchIPv4: four dot-separated decimal octets 0-255, not part of a longer
// dotted number.
func (r *Redactor) matchIPv4(i int) int {
	j := i
	for part := 0; part < 4; part++ {
		s, v := j, 0
		for r.has(j, cDigit) && j-s < 3 {
			v = v*10 + int(r.at(j)-'0')
			j++
		}
		if j == s || v > 255 || r.has(j, cDigit) {
			return -1
		}
		if part < 3 {
			if r.at(j) != '.' {
				return -1
			}
			j++
		}
	}
	if r.has(j, cAlnum) || r.at(j) == '.' && r.has(j+1, cDigit) {
		return -1
	}
	return j
}

// mayBeIPv6 is a quick necessary condition of matchIPv6: "::", or 1-4 hex
// digits and a colon.
func (r *Redactor) mayBeIPv6(i int) bool {
	if r.at(i) == ':' {
		return r.at(i+1) == ':'
	}
	h := 0
	for h < 5 && r.has(i+h, cHex) {
		h++
	}
	return h >= 1 && h <= 4 && r.at(i+h) == ':'
}

// matchIPv6: colon-separated groups of 1-4 hex digits, eight of them, or
// fewer with one "::"; an IPv4 address may stand for the last two groups.
func (r *Redactor) matchIPv6(i int) int {
	j, groups, colons := i, 0, 0
	compressed := false
	if r.at(j) == ':' {
		if r.at(j+1) != ':' {
			return -1
		}
		compressed, colons = true, 2
		j += 2
	}
	for {
		s := j
		for r.has(j, cHex) && j-s < 5 {
			j++
		}
		h := j - s
		if h == 0 {
			break
		}
		if h > 4 {
			return -1
		}
		if r.at(j) == '.' && groups <= 6 && colons > 0 { // a trailing dotted quad
			e4 := r.matchIPv4(s)
			if e4 < 0 {
				return -1
			}
			groups += 2
			j = e4
			break
		}
		groups++
		if r.at(j) == ':' {
			if r.at(j+1) == ':' {
				if compressed {
					return -1
				}
				compressed = true
				colons += 2
				j += 2
				continue
			}
			if r.has(j+1, cHex) {
				colons++
				j++
				continue
			}
		}
		break
	}
	if colons < 2 || groups == 0 {
		return -1
	}
	if compressed && groups > 7 || !compressed && groups != 8 {
		return -1
	}
	if r.has(j, cAlnum) || r.at(j) == ':' {
		return -1
	}
	return j
}

// matchCard: 13-19 digits, single spaces or dashes allowed between digits,
// first digit 2-6 (the IIN ranges of the card networks), passing the Luhn
// check.
func (r *Redactor) matchCard(i int) int {
	j, d := i, 0
	for {
		c := r.at(j)
		if classes[c]&cDigit != 0 {
			if d == 19 {
				return -1
			}
			r.digits[d] = c - '0'
			d++
			j++
		} else if (c == ' ' || c == '-') && r.has(j+1, cDigit) {
			j++
		} else {
			break
		}
	}
	if d < 13 || r.has(j, cAlnum) {
		return -1
	}
	if first := r.digits[0]; first < 2 || first > 6 {
		return -1
	}
	sum := 0
	for k := 0; k < d; k++ {
		v := int(r.digits[d-1-k])
		if k&1 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	if sum%10 != 0 {
		return -1
	}
	return j
}

// matchPhone: a phone number, 7-15 digits in all:
//   - international: "+" and either the whole number as one run of digits
//     ("+4915123456789") or a country code of 1-3 digits followed by groups
//     ("+44 20 7946 0958", "+1 (555) 123-4567", "+49-30-1234567");
//   - national: two or more groups of at least 2 digits ("(555) 123-4567",
//     "030 1234567", "555.123.4567", "06 12 34 56 78"). Not counted: two
//     dot-separated groups (a decimal), dot-separated thousands
//     ("12.345.678") and dates (4-2-2 or 2-2-4 digits).
//
// Groups are separated by one kind of single separator (space, dash or
// dot) throughout — after an international country code any one may come
// first — and a group in parentheses may be followed by a space. The
// number ends where another kind of separator starts; a run of more than
// 15 digits is not a phone number, and neither is its tail: a national
// number does not start right after a digit and the separator it uses
// itself ("4111 1111 1111 1112" holds no "1111 1111 1112").
func (r *Redactor) matchPhone(i int) int {
	j := i
	intl := false
	if r.at(j) == '+' {
		intl = true
		j++
	}
	digits, groups, dots := 0, 0, 0
	shortGroup := false
	var sep uint8
	thousands := true
	g0, g1, g2 := 0, 0, 0
	for {
		paren := r.at(j) == '('
		if paren {
			j++
		}
		s := j
		for r.has(j, cDigit) {
			j++
		}
		g := j - s
		if g == 0 {
			return -1
		}
		if paren {
			if r.at(j) != ')' {
				return -1
			}
			j++
		}
		if groups > 0 && g != 3 {
			thousands = false
		}
		switch groups {
		case 0:
			g0 = g
		case 1:
			g1 = g
		case 2:
			g2 = g
		}
		groups++
		digits += g
		if digits > 15 {
			return -1
		}
		if g < 2 && !(intl && groups == 1) {
			shortGroup = true
		}
		if intl && groups == 1 && g > 3 { // an unformatted international number is a single run
			break
		}
		c, after := r.at(j), r.at(j+1)
		if paren && c == ' ' && classes[after]&cDigit != 0 {
			j++
			continue
		}
		if (c == ' ' || c == '-' || c == '.') && (classes[after]&cDigit != 0 || after == '(') {
			if !(intl && groups == 1) {
				if sep != 0 && c != sep {
					break
				}
				sep = c
			}
			if c == '.' {
				dots++
			}
			j++
			continue
		}
		if paren && classes[c]&cDigit != 0 {
			continue
		}
		break
	}
	if digits < 7 || r.has(j, cAlnum) {
		return -1
	}
	if intl {
		return j
	}
	if p := r.at(i - 1); (p == ' ' || p == '-' || p == '/') && r.has(i-2, cDigit) && (sep == 0 || sep == p) {
		return -1
	}
	if groups < 2 || shortGroup {
		return -1
	}
	if groups == 2 && dots == 1 {
		return -1
	}
	if dots > 0 && thousands {
		return -1
	}
	if groups == 3 && digits == 8 && (g0 == 4 && g1 == 2 && g2 == 2 || g0 == 2 && g1 == 2 && g2 == 4) {
		return -1
	}
	return j
}

// matchParam: at "?", "&", "#" or ";", a name of [A-Za-z0-9_.\-\[\]%]
// followed by "="; when the name (any case) is on the deny-list, its value
// — up to the next & # ; whitespace quote < > or the end — is replaced
// (paramValue is where it starts). Returns the end of the value.
func (r *Redactor) matchParam(i int) int {
	s := i + 1
	e := r.runEnd(s, cParam)
	if e == s || r.at(e) != '=' {
		return -1
	}
	v := e + 1
	ve := v
	for ve < r.n {
		c := r.at(ve)
		if c == '&' || c == '#' || c == ';' || c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' {
			break
		}
		ve++
	}
	if ve == v {
		return -1
	}
	for _, name := range r.opt.DenyParams {
		if len(name) == e-s && r.startsWith(s, name, true) {
			r.paramValue = v
			return ve
		}
	}
	return -1
}

// truncateUTF16 cuts b so that its text is at most max UTF-16 code units
// long (the collector's measure of string length), at a character
// boundary.
func truncateUTF16(b []byte, max int) []byte {
	units := 0
	for p := 0; p < len(b); {
		c := b[p]
		size, u := 1, 1
		switch {
		case c >= 0xf0:
			size, u = 4, 2
		case c >= 0xe0:
			size = 3
		case c >= 0x80:
			size = 2
		}
		if units+u > max {
			return b[:p]
		}
		units += u
		p += size
	}
	return b
}
