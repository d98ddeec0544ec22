package core

// Kind is the JSON type of a Value.
type Kind uint8

// JSON kinds.
const (
	KindNull Kind = iota
	KindFalse
	KindTrue
	KindNumber
	KindString
	KindArray
	KindObject
)

// Value is a parsed JSON value. The validator works on this interface so that
// core stays free of any JSON library: the edge adapts its parser to it without
// allocating (a pointer wrapped in an interface).
type Value interface {
	Kind() Kind
	// AppendNumber appends the number's token exactly as it appeared in the
	// input to dst (KindNumber only). Parsers may be lenient: the validator
	// checks the token against the JSON grammar itself.
	AppendNumber(dst []byte) []byte
	// Str returns the unescaped bytes of a string (KindString only).
	Str() []byte
	// Len returns the number of elements of an array (KindArray only).
	Len() int
	// At returns element i of an array (KindArray only).
	At(i int) Value
	// Fields appends the object's members, in input order and including
	// duplicates, to dst and returns it (KindObject only).
	Fields(dst []Field) []Field
}

// Field is one member of a JSON object.
type Field struct {
	Key []byte
	Val Value
}
