// Package jsonvalue adapts fastjson's parsed values to core.Value, so the
// edge (decoding request bodies) and the plugin host (re-validating plugin
// output) feed the same validator from the same parser.
package jsonvalue

import (
	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
)

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
