package gen

// PII-looking values for the free-text fields that leak it in real traffic:
// what visitors type, what integrations pass by mistake, what lands in error
// messages and URLs. None of it is real: names are common, card numbers are
// random but Luhn-valid, keys and tokens are random.

type piiKind uint8

const (
	piiEmail piiKind = iota
	piiPhone
	piiIPv4
	piiIPv6
	piiCard
	piiBearer
	piiAPIKey
	numPIIKinds
)

const (
	alnum     = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	base64url = alnum + "-_"
)

// pii reports whether the next free-text field carries PII.
func (g *Generator) pii() bool { return g.cfg.PIIRate > 0 && g.r.chance(g.cfg.PIIRate) }

func (g *Generator) chars(b []byte, set string, n int) []byte {
	for range n {
		b = append(b, set[g.r.intn(len(set))])
	}
	return b
}

func (g *Generator) digits(b []byte, n int) []byte { return g.chars(b, "0123456789", n) }

// appendPII appends one value of kind k.
func (g *Generator) appendPII(b []byte, k piiKind) []byte {
	r := &g.r
	switch k {
	case piiEmail:
		b = append(b, pick(r, firstNames)...)
		b = append(b, '.')
		b = append(b, pick(r, lastNames)...)
		if r.chance(0.4) {
			b = integer(b, r.between(1, 99))
		}
		b = append(b, '@')
		return append(b, pick(r, mailDomains)...)
	case piiPhone:
		switch r.intn(4) {
		case 0:
			b = append(b, "+1 415-555-"...)
			return g.digits(b, 4)
		case 1:
			b = append(b, "+49 30 "...)
			return g.digits(b, 7)
		case 2:
			b = append(b, "(212) 555-"...)
			return g.digits(b, 4)
		default:
			b = append(b, "+44 7700 900"...)
			return g.digits(b, 3)
		}
	case piiIPv4:
		for i := range 4 {
			if i > 0 {
				b = append(b, '.')
			}
			b = integer(b, r.between(1, 254))
		}
		return b
	case piiIPv6:
		b = append(b, "2001:db8:"...)
		for i := range 5 {
			if i == 2 {
				b = append(b, ':') // a "::" run of zero groups
			}
			b = append(b, hexDigits[1+r.intn(15)])
			b = g.chars(b, hexDigits, r.intn(4))
			if i < 4 {
				b = append(b, ':')
			}
		}
		return b
	case piiCard:
		return g.card(b)
	case piiBearer:
		b = append(b, "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."...)
		b = g.chars(b, base64url, 36)
		b = append(b, '.')
		return g.chars(b, base64url, 43)
	default: // piiAPIKey
		b = append(b, "sk_live_"...)
		return g.chars(b, alnum, 24)
	}
}

// card appends a Luhn-valid 16-digit card number, sometimes grouped by four.
func (g *Generator) card(b []byte) []byte {
	r := &g.r
	var d [16]byte
	d[0] = '4' // Visa
	if r.chance(0.4) {
		d[0], d[1] = '5', byte('1'+r.intn(5)) // Mastercard 51–55
	} else {
		d[1] = byte('0' + r.intn(10))
	}
	for i := 2; i < 15; i++ {
		d[i] = byte('0' + r.intn(10))
	}
	// The check digit makes the Luhn sum of all 16 digits a multiple of 10:
	// from the right, the check digit is position 1 and every second digit
	// before it (positions 2, 4, …) is doubled.
	sum := 0
	for i := 14; i >= 0; i-- {
		x := int(d[i] - '0')
		if (14-i)%2 == 0 {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
	}
	d[15] = byte('0' + (10-sum%10)%10)
	sep := byte(0)
	switch r.intn(6) {
	case 0:
		sep = ' '
	case 1:
		sep = '-'
	}
	for i := range 16 {
		if sep != 0 && i > 0 && i%4 == 0 {
			b = append(b, sep)
		}
		b = append(b, d[i])
	}
	return b
}

// piiText appends a short phrase carrying one PII value.
func (g *Generator) piiText(b []byte) []byte {
	k := piiKind(g.r.intn(int(numPIIKinds)))
	switch k {
	case piiEmail:
		b = append(b, "contact me at "...)
	case piiPhone:
		b = append(b, "call back on "...)
	case piiIPv4, piiIPv6:
		b = append(b, "client "...)
	case piiCard:
		b = append(b, "card "...)
	case piiBearer:
		b = append(b, "Authorization: "...)
	case piiAPIKey:
		b = append(b, "api key "...)
	}
	return g.appendPII(b, k)
}

// piiQuery appends a query string carrying PII to a URL.
func (g *Generator) piiQuery(b []byte) []byte {
	r := &g.r
	switch r.intn(5) {
	case 0, 1:
		b = append(b, "?email="...)
		b = g.appendPII(b, piiEmail)
		b = append(b, "&token="...)
		return g.chars(b, hexDigits, 32)
	case 2:
		b = append(b, "?api_key="...)
		return g.appendPII(b, piiAPIKey)
	case 3:
		b = append(b, "?phone=%2B1415555"...)
		return g.digits(b, 4)
	default:
		b = append(b, "?access_token="...)
		return g.chars(b, base64url, 40)
	}
}
