// Package jsonvalue adapts fastjson's parsed values to core.Value, so the
// edge (decoding request bodies) and the plugin host (re-validating plugin
// output) feed the same validator from the same parser.
package jsonvalue

import (
	"bytes"
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonscan"
)

// Parser is a fastjson parser that reads string escapes strictly: an escape
// that is not JSON's is a syntax error, and an unpaired UTF-16 surrogate
// escape reaches the validator as an encoded surrogate, which it rejects as
// invalid text (see jsonscan.FixEscapes), instead of the six characters of
// the escape or U+FFFD that fastjson would make of it. Text without a
// backslash is parsed as fastjson parses it, at the same cost. The zero
// value is ready to use; like fastjson's, a Parser is not safe for
// concurrent use, and a parsed value is valid until the next parse.
type Parser struct {
	fj  fastjson.Parser
	fix []byte
}

// EscapeError is a backslash in a JSON text that starts none of JSON's
// escapes.
type EscapeError struct {
	Offset int    // of the backslash in the text parsed
	Seq    string // the backslash and the byte after it (\u and four more)
}

func (e *EscapeError) Error() string {
	return "invalid escape " + strconv.Quote(e.Seq) + " at offset " + strconv.Itoa(e.Offset)
}

// ParseBytes parses b.
func (p *Parser) ParseBytes(b []byte) (*fastjson.Value, error) {
	return p.Parse(b, bytes.IndexByte(b, '\\') >= 0)
}

// Parse parses b; escaped tells whether b may hold a backslash (callers
// that have scanned b already know: see jsonscan.SkipValueEscaped). With
// escaped false, b must hold none.
func (p *Parser) Parse(b []byte, escaped bool) (*fastjson.Value, error) {
	if !escaped {
		return p.fj.ParseBytes(b)
	}
	fixed, bad := jsonscan.FixEscapes(p.fix[:0], b)
	if bad >= 0 {
		n := 2 // the backslash and the byte after it, or \u and four more
		if bad+1 < len(b) && b[bad+1] == 'u' {
			n = 6
		}
		return nil, &EscapeError{Offset: bad, Seq: string(b[bad:min(len(b), bad+n)])}
	}
	if len(b) > 0 && len(fixed) > 0 && &fixed[0] != &b[0] && cap(fixed) <= 1<<20 {
		p.fix = fixed[:0] // keep the buffer (fastjson copies what it parses)
	}
	return p.fj.ParseBytes(fixed)
}

// fjValue adapts a fastjson value to core.Value. It is a pointer conversion,
// so wrapping allocates nothing.
type fjValue fastjson.Value

// Wrap returns v as a core.Value without allocating.
func Wrap(v *fastjson.Value) core.Value { return (*fjValue)(v) }

func (v *fjValue) fj() *fastjson.Value { return (*fastjson.Value)(v) }

func (v *fjValue) Kind() core.Kind {
	switch v.fj().Type() {
	case fastjson.TypeObject:
		return core.KindObject
	case fastjson.TypeArray:
		return core.KindArray
	case fastjson.TypeString:
		return core.KindString
	case fastjson.TypeNumber:
		return core.KindNumber
	case fastjson.TypeTrue:
		return core.KindTrue
	case fastjson.TypeFalse:
		return core.KindFalse
	}
	return core.KindNull
}

// AppendNumber appends the number's raw token (fastjson keeps it verbatim).
func (v *fjValue) AppendNumber(dst []byte) []byte { return v.fj().MarshalTo(dst) }

func (v *fjValue) Str() []byte { return v.fj().GetStringBytes() }

func (v *fjValue) Len() int {
	a, _ := v.fj().Array()
	return len(a)
}

func (v *fjValue) At(i int) core.Value {
	a, _ := v.fj().Array()
	return Wrap(a[i])
}

func (v *fjValue) Fields(dst []core.Field) []core.Field {
	o, err := v.fj().Object()
	if err != nil {
		return dst
	}
	o.Visit(func(k []byte, x *fastjson.Value) {
		dst = append(dst, core.Field{Key: k, Val: Wrap(x)})
	})
	return dst
}
