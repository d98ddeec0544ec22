package core

import "fmt"

// A Capture names top-level event fields whose canonical values a consumer
// wants located while events are validated, so that it does not have to
// parse the canonical JSON again: the aggregates' inputs are read this way.
// Each named field is given a number, its position in the list passed to
// NewCapture plus one; Span.Field carries that number. A Capture is
// immutable and may be shared by any number of Processors.
type Capture struct {
	names []string
	// field[t][i] is the number of field i of event type t's schema (0 = not
	// captured).
	field [NumEventTypes][maxSlots]uint8
	// visitor and scene are the numbers of visitorId and sceneId, which the
	// Processor writes itself (0 = not captured).
	visitor, scene uint8
}

// NewCapture returns a Capture of the named top-level fields. Every name must
// be a top-level field of at least one event type (the envelope's fields
// included), and at most 255 may be given.
func NewCapture(names ...string) (*Capture, error) {
	if len(names) > 255 {
		return nil, fmt.Errorf("core: capture of %d fields: at most 255", len(names))
	}
	c := &Capture{names: append([]string(nil), names...)}
	for n, name := range names {
		num := uint8(n + 1)
		found := false
		for t := TypeSessionStart; t < NumEventTypes; t++ {
			o := eventSpecs[t]
			idx := o.index.get(name)
			if idx == 0 {
				continue
			}
			found = true
			if int(idx-1) < envSDKVersion {
				return nil, fmt.Errorf("core: capture of %q: the Event carries it already", name)
			}
			if c.field[t][idx-1] != 0 {
				return nil, fmt.Errorf("core: capture names %q twice", name)
			}
			c.field[t][idx-1] = num
		}
		if !found {
			return nil, fmt.Errorf("core: capture of %q: no event type has such a top-level field", name)
		}
		switch name {
		case "visitorId":
			c.visitor = num
		case "sceneId":
			c.scene = num
		}
	}
	return c, nil
}

// Names returns the captured fields' names, in number order (Names()[k-1] is
// the name of number k).
func (c *Capture) Names() []string { return c.names }

// Span locates the canonical value of a captured field (the raw JSON token:
// a quoted string, a number, an array or an object) in a Batch's buffer.
type Span struct {
	Field      uint8 // the field's number in the Capture
	start, end uint32
}
