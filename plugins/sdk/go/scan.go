package sdk

import "strconv"

// MaxDepth is the deepest nesting of arrays and objects the scanner
// accepts. Events are at most four levels deep; the limit only bounds the
// work done on hostile input.
const MaxDepth = 1000

// SyntaxError reports malformed JSON and where the scanner found it.
type SyntaxError struct {
	Offset int // byte offset in the scanned document
	Msg    string
}

func (e *SyntaxError) Error() string {
	return "sdk: invalid JSON at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

func syntaxErr(off int, msg string) error { return &SyntaxError{Offset: off, Msg: msg} }

// Byte classes, as tables: a lookup is cheaper than a chain of
// comparisons in Go's wasm code, where every branch costs a dispatch.
var (
	space = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}
	digit = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true}
)

func skipSpace(b []byte, i int) int {
	for i < len(b) && space[b[i]] {
		i++
	}
	return i
}

// plain[c] reports whether byte c stands for itself inside a JSON string
// (not a quote, a backslash or a control character).
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scan checks the JSON value that starts at b[i] (no leading space) and
// returns the offset just after it. When members is not nil and the value
// is an object, the offsets of its members are appended to *members.
//
// It is one loop over the bytes with an explicit stack of open containers
// rather than a recursive descent: function calls are expensive in Go's
// wasm code, and this is the SDK's hottest path (every event is checked
// once before its handler runs).
func scan(b []byte, i int, members *[]member) (int, error) {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	n := len(b)
	var key, keyEnd, val int
	var esc bool

value: // a value starts at b[i]
	if i >= n {
		return i, syntaxErr(i, "unexpected end of input")
	}
	switch c := b[i]; {
	case c == '"':
		j, _, err := scanString(b, i)
		if err != nil {
			return j, err
		}
		i = j + 1
	case c == '{' || c == '[':
		if len(stack) >= MaxDepth {
			return i, syntaxErr(i, "nested too deeply")
		}
		stack = append(stack, c)
		i = skipSpace(b, i+1)
		if i < n && b[i] == c+2 { // '}' and ']' follow '{' and '[' by two
			i++
			stack = stack[:len(stack)-1]
			goto after
		}
		if c == '{' {
			goto key
		}
		goto value
	case c == 't':
		if n-i < 4 || string(b[i:i+4]) != "true" {
			return i, syntaxErr(i, "invalid literal")
		}
		i += 4
	case c == 'f':
		if n-i < 5 || string(b[i:i+5]) != "false" {
			return i, syntaxErr(i, "invalid literal")
		}
		i += 5
	case c == 'n':
		if n-i < 4 || string(b[i:i+4]) != "null" {
			return i, syntaxErr(i, "invalid literal")
		}
		i += 4
	case c == '-' || digit[c]:
		j := i
		if c == '-' {
			j++
		}
		switch {
		case j < n && b[j] == '0':
			j++
		case j < n && b[j] >= '1' && b[j] <= '9':
			j++
			for j < n && digit[b[j]] {
				j++
			}
		default:
			return i, syntaxErr(i, "invalid number")
		}
		if j < n && b[j] == '.' {
			j++
			if j >= n || !digit[b[j]] {
				return i, syntaxErr(i, "invalid number")
			}
			for j < n && digit[b[j]] {
				j++
			}
		}
		if j < n && (b[j] == 'e' || b[j] == 'E') {
			j++
			if j < n && (b[j] == '+' || b[j] == '-') {
				j++
			}
			if j >= n || !digit[b[j]] {
				return i, syntaxErr(i, "invalid number")
			}
			for j < n && digit[b[j]] {
				j++
			}
		}
		i = j
	default:
		return i, syntaxErr(i, "unexpected character")
	}

after: // a value ended at b[i]
	if len(stack) == 0 {
		return i, nil
	}
	if members != nil && len(stack) == 1 && stack[0] == '{' {
		*members = append(*members, member{key: key, keyEnd: keyEnd, val: val, end: i, esc: esc})
	}
	i = skipSpace(b, i)
	if i >= n {
		return i, syntaxErr(i, "unterminated object or array")
	}
	if top := stack[len(stack)-1]; b[i] == ',' {
		i = skipSpace(b, i+1)
		if top == '{' {
			goto key
		}
		goto value
	} else if b[i] != top+2 {
		if top == '{' {
			return i, syntaxErr(i, "expected ',' or '}'")
		}
		return i, syntaxErr(i, "expected ',' or ']'")
	}
	i++
	stack = stack[:len(stack)-1]
	goto after

key: // a member name starts at b[i]
	if i >= n || b[i] != '"' {
		return i, syntaxErr(i, "expected a member name")
	}
	{
		j, escaped, err := scanString(b, i)
		if err != nil {
			return j, err
		}
		if len(stack) == 1 {
			key, keyEnd, esc = i, j+1, escaped
		}
		i = skipSpace(b, j+1)
	}
	if i >= n || b[i] != ':' {
		return i, syntaxErr(i, "expected ':'")
	}
	i = skipSpace(b, i+1)
	if len(stack) == 1 {
		val = i
	}
	goto value
}

// structural marks the bytes indexObject stops at inside a value.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// delim marks the bytes that end a number or literal.
var delim = [256]bool{',': true, '}': true, ']': true, ':': true, '"': true, '{': true, '[': true,
	' ': true, '\t': true, '\n': true, '\r': true}

// indexObject records the members of the object that starts at b[i] (a
// '{') and returns the offset after it. It checks the object's own syntax
// (names, colons, commas, braces) and that each member's value is
// complete: strings terminated, brackets paired. Unlike scan it does not
// check the tokens inside values (number grammar, literals, escapes,
// control characters): the SDK uses it for events from the host, which the
// collector has validated already, where a full check would cost about as
// much as everything else the SDK does with a batch.
func indexObject(b []byte, i int, members *[]member) (int, error) {
	n := len(b)
	i = skipSpace(b, i+1)
	if i < n && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= n || b[i] != '"' {
			return i, syntaxErr(i, "expected a member name")
		}
		key := i
		j := i + 1
		esc := false
		for {
			for j < n && plain[b[j]] {
				j++
			}
			if j >= n {
				return i, syntaxErr(i, "unterminated string")
			}
			if b[j] == '"' {
				break
			}
			if b[j] == '\\' {
				esc = true
				j++
			}
			j++
		}
		keyEnd := j + 1
		i = skipSpace(b, keyEnd)
		if i >= n || b[i] != ':' {
			return i, syntaxErr(i, "expected ':'")
		}
		val := skipSpace(b, i+1)
		end := skipChecked(b, val)
		if end < 0 {
			return val, syntaxErr(val, "incomplete value")
		}
		*members = append(*members, member{key: key, keyEnd: keyEnd, val: val, end: end, esc: esc})
		i = skipSpace(b, end)
		if i >= n {
			return i, syntaxErr(i, "unterminated object")
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, syntaxErr(i, "expected ',' or '}'")
		}
	}
}

// skipChecked returns the offset after the value at b[i], or -1 when the
// value is empty, a string is unterminated, brackets do not pair up or
// nest deeper than MaxDepth (counting the event object).
func skipChecked(b []byte, i int) int {
	n := len(b)
	if i >= n {
		return -1
	}
	if c := b[i]; c != '"' && c != '{' && c != '[' {
		j := i
		for j < n && !delim[b[j]] {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
	var stackBuf [32]byte
	stack := stackBuf[:0]
	for i < n {
		for i < n && !structural[b[i]] {
			i++
		}
		if i >= n {
			return -1
		}
		switch c := b[i]; c {
		case '"':
			i++
			for {
				for i < n && plain[b[i]] {
					i++
				}
				if i >= n {
					return -1
				}
				if b[i] == '"' {
					break
				}
				if b[i] == '\\' {
					i++
				}
				i++
			}
		case '{', '[':
			if len(stack) >= MaxDepth-1 {
				return -1
			}
			stack = append(stack, c)
		default: // '}', ']' close the innermost '{', '[' (two code points before them)
			if len(stack) == 0 || stack[len(stack)-1]+2 != c {
				return -1
			}
			stack = stack[:len(stack)-1]
		}
		i++
		if len(stack) == 0 {
			return i
		}
	}
	return -1
}

// checkEscape checks the escape sequence at b[j] (a backslash) and returns
// the offset after it.
func checkEscape(b []byte, j int) (int, error) {
	if j+1 >= len(b) {
		return j, syntaxErr(j, "unterminated escape")
	}
	switch b[j+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return j + 2, nil
	case 'u':
		if len(b)-j < 6 {
			return j, syntaxErr(j, "short \\u escape")
		}
		for k := j + 2; k < j+6; k++ {
			if hexVal(b[k]) < 0 {
				return k, syntaxErr(k, "invalid \\u escape")
			}
		}
		return j + 6, nil
	}
	return j, syntaxErr(j, "invalid escape")
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// The functions below walk documents that scan has already accepted.
// They never index out of range, whatever the input, but they only give
// meaningful answers for valid JSON.

// skipString returns the offset after the string starting at b[i].
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return len(b)
}

// skipValue returns the offset after the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// member holds the offsets of one object member: key is the opening quote
// of its name, keyEnd the offset after the closing quote, val and end the
// value's range.
type member struct {
	key, keyEnd, val, end int
	esc                   bool // the name contains escapes
}

// nextMember reads the member at b[i] (i just after '{' or ','; spaces
// allowed). ok is false at the closing brace. next is the offset after the
// following ',' or at the '}'.
func nextMember(b []byte, i int) (m member, next int, ok bool) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '"' {
		return m, i, false
	}
	m.key = i
	m.keyEnd = skipString(b, i)
	for k := m.key + 1; k < m.keyEnd-1; k++ {
		if b[k] == '\\' {
			m.esc = true
			break
		}
	}
	i = skipSpace(b, m.keyEnd)
	if i < len(b) && b[i] == ':' {
		i++
	}
	m.val = skipSpace(b, i)
	m.end = skipValue(b, m.val)
	i = skipSpace(b, m.end)
	if i < len(b) && b[i] == ',' {
		i++
	}
	return m, i, true
}

// nameIs reports whether the member's name, unescaped, equals name.
func (m member) nameIs(b []byte, name string) bool {
	if m.keyEnd-m.key < 2 || m.keyEnd > len(b) {
		return false
	}
	raw := b[m.key+1 : m.keyEnd-1]
	if !m.esc {
		return string(raw) == name
	}
	var buf [64]byte
	return string(appendUnescaped(buf[:0], raw)) == name
}

// name returns the member's name, unescaped.
func (m member) name(b []byte) string {
	if m.keyEnd-m.key < 2 || m.keyEnd > len(b) {
		return ""
	}
	raw := b[m.key+1 : m.keyEnd-1]
	if !m.esc {
		return string(raw)
	}
	return string(appendUnescaped(nil, raw))
}

// scanString checks the string starting at the quote b[i] and returns the
// index of its closing quote and whether it holds escapes. On error the
// index is where the problem is.
func scanString(b []byte, i int) (end int, escaped bool, err error) {
	n := len(b)
	j := i + 1
	for {
		for j < n && plain[b[j]] {
			j++
		}
		if j >= n {
			return i, escaped, syntaxErr(i, "unterminated string")
		}
		if b[j] == '"' {
			return j, escaped, nil
		}
		if b[j] != '\\' {
			return j, escaped, syntaxErr(j, "control character in string")
		}
		k, err := checkEscape(b, j)
		if err != nil {
			return j, escaped, err
		}
		j, escaped = k, true
	}
}
