package core

import (
	"math"
	"strconv"
)

// Processor validates events one by one (docs/API.md, "Validation"), applies channel gating
// (docs/API.md, "Channel gating") and appends each accepted event's canonical JSON to a Batch. It
// keeps its scratch space between requests, so that in steady state it does
// not allocate. The zero value is ready to use after Begin. A Processor is not
// safe for concurrent use; give each worker its own.
type Processor struct {
	b   *Batch
	ch  Channels
	out []byte // the batch buffer while an event is written
	cap *Capture

	// pre holds the request's constant pieces, quoted:
	// [0:preVisitor) `,"projectId":"…","sessionId":`
	// [preVisitor:preBrowser) `,"visitorId":"…","ts":`
	// [preBrowser:preOS) the browser family, [preOS:) the OS family.
	pre                           []byte
	preVisitor, preBrowser, preOS int

	stripped [NumStrips]int
	hit      [NumStrips]bool // strips made on the current event

	num []byte // scratch for the ts token

	badText string // why the string scalar last found scalarUTF8 is refused

	fields [maxDepth + 1][]Field
	slots  [maxDepth + 1][maxSlots]Value
}

// SetCapture makes the Processor locate the fields of c in every event it
// accepts from now on (see Batch.Captured); nil stops it.
func (p *Processor) SetCapture(c *Capture) { p.cap = c }

// The visitorId value within pre[preVisitor:preBrowser].
const (
	visitorValStart = len(`,"visitorId":`)
	visitorValLen   = 2 + len(RequestInfo{}.VisitorID)
)

// Begin starts a request: accepted events will be appended to b, and info
// (project, visitor, browser and OS, channels) is stamped on each.
func (p *Processor) Begin(b *Batch, info *RequestInfo) {
	p.b = b
	p.ch = info.Channels
	p.stripped = [NumStrips]int{}
	// Drop the previous request's values, so that its parse tree is not kept
	// alive by an idle Processor.
	p.slots = [maxDepth + 1][maxSlots]Value{}
	for d := range p.fields {
		clear(p.fields[d][:cap(p.fields[d])])
	}
	pre := p.pre[:0]
	pre = append(pre, `,"projectId":`...)
	pre = appendQuoted(pre, info.ProjectID)
	pre = append(pre, `,"sessionId":`...)
	p.preVisitor = len(pre)
	pre = append(pre, `,"visitorId":`...)
	pre = appendQuoted(pre, info.VisitorID[:])
	pre = append(pre, `,"ts":`...)
	p.preBrowser = len(pre)
	pre = appendQuoted(pre, orUnknown(info.Browser))
	p.preOS = len(pre)
	pre = appendQuoted(pre, orUnknown(info.OS))
	p.pre = pre
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Stripped reports how many accepted events had fields stripped by gating
// since Begin, per Strip.
func (p *Processor) Stripped() [NumStrips]int { return p.stripped }

// Restart forgets the events added since Begin, for a caller that decodes
// the request again from its start: the strip counts are zeroed (the caller
// truncates the batch to what it held at Begin).
func (p *Processor) Restart() {
	p.stripped = [NumStrips]int{}
	p.slots = [maxDepth + 1][maxSlots]Value{}
}

// Add validates one event, applies gating and, when it is kept, appends its
// canonical JSON (and its session id) to the batch. It returns what became of
// the event, its type (TypeInvalid when the type is missing or unknown) and,
// when Rejected, why. Nothing of a rejected or filtered event stays in the
// batch. Begin must have been called.
func (p *Processor) Add(v Value) (Outcome, EventType, Reason) {
	b := p.b
	mark, spans := len(b.Buf), len(b.Spans)
	p.out = b.Buf
	p.hit = [NumStrips]bool{}
	t, ts, sess, r, ok := p.event(v)
	if !ok {
		b.Buf = p.out[:mark]
		b.Spans = b.Spans[:spans]
		return Rejected, t, r
	}
	if p.ch.Drops(t) {
		b.Buf = p.out[:mark]
		b.Spans = b.Spans[:spans]
		return Filtered, t, Reason{}
	}
	end := len(p.out)
	p.out = append(p.out, sess...)
	b.Buf = p.out
	b.Events = append(b.Events, Event{Type: t, TS: ts,
		start: uint32(mark), end: uint32(end), sessStart: uint32(end), sessEnd: uint32(len(p.out)),
		capStart: uint32(spans), capEnd: uint32(len(b.Spans)), captured: p.cap != nil})
	for s, hit := range p.hit {
		if hit {
			p.stripped[s]++
		}
	}
	return Accepted, t, Reason{}
}

// event validates v and writes its canonical form to p.out.
func (p *Processor) event(v Value) (t EventType, ts int64, sess []byte, r Reason, ok bool) {
	if v == nil || v.Kind() != KindObject {
		return TypeInvalid, 0, nil, Reason{Msg: msgEvent}, false
	}
	fields := v.Fields(p.fields[0][:0])
	p.fields[0] = fields

	var tv Value
	for i := range fields {
		if string(fields[i].Key) == "type" {
			if tv != nil {
				return TypeInvalid, 0, nil, Reason{"type", msgDuplicate}, false
			}
			tv = fields[i].Val
		}
	}
	if tv == nil || tv.Kind() == KindNull {
		return TypeInvalid, 0, nil, Reason{"type", msgRequired}, false
	}
	if tv.Kind() != KindString {
		return TypeInvalid, 0, nil, Reason{"type", msgString}, false
	}
	t, known := ParseEventType(tv.Str())
	if !known {
		return TypeInvalid, 0, nil, Reason{"type", msgUnknownType}, false
	}

	o := eventSpecs[t]
	seen, r, ok := p.collect(o, fields, 0)
	if !ok {
		return t, 0, nil, r, false
	}
	slot := func(i int) Value { return p.present(seen, 0, i) }

	// projectId is checked but replaced by the key's project.
	if _, r, ok = p.checkString(&o.fields[envProjectID], slot(envProjectID)); !ok {
		return t, 0, nil, r, false
	}
	if sess, r, ok = p.checkString(&o.fields[envSessionID], slot(envSessionID)); !ok {
		return t, 0, nil, r, false
	}
	if ts, r, ok = p.checkTS(&o.fields[envTS], slot(envTS)); !ok {
		return t, 0, nil, r, false
	}
	p.out = append(p.out, `{"type":"`...)
	p.out = append(p.out, typeNames[t]...)
	p.out = append(p.out, '"')
	p.out = append(p.out, p.pre[:p.preVisitor]...)
	p.out = appendQuoted(p.out, sess)
	if p.cap != nil && p.cap.visitor != 0 {
		p.span(p.cap.visitor, len(p.out)+visitorValStart, len(p.out)+visitorValStart+visitorValLen)
	}
	p.out = append(p.out, p.pre[p.preVisitor:p.preBrowser]...)
	p.out = strconv.AppendInt(p.out, ts, 10)

	for i := envSDKVersion; i < len(o.fields); i++ {
		f := &o.fields[i]
		if i == envSceneID && slot(i) == nil {
			p.out = append(p.out, `,"sceneId":"default"`...)
			if p.cap != nil && p.cap.scene != 0 {
				p.span(p.cap.scene, len(p.out)-len(`"default"`), len(p.out))
			}
			continue
		}
		mark := len(p.out)
		wrote, r, ok := p.member(f, slot(i), true, 0)
		if !ok {
			return t, 0, nil, r, false
		}
		if !wrote {
			continue
		}
		if f.gated && p.strips(f.strip) {
			p.out = p.out[:mark]
			p.hit[f.strip] = true
			continue
		}
		if p.cap != nil {
			if num := p.cap.field[t][i]; num != 0 {
				p.span(num, mark+1+len(f.key), len(p.out))
			}
		}
	}
	p.out = append(p.out, '}')
	return t, ts, sess, Reason{}, true
}

// span records where the value of captured field num lies in the batch.
func (p *Processor) span(num uint8, start, end int) {
	p.b.Spans = append(p.b.Spans, Span{Field: num, start: uint32(start), end: uint32(end)})
}

// strips reports whether gating removes fields of channel s.
func (p *Processor) strips(s Strip) bool {
	switch s {
	case StripBounds:
		return !p.ch.BoundingBox
	case StripGaze:
		return !p.ch.Gaze
	}
	return false
}

// collect files the members of an object under their schema positions (slots
// of depth d) and rejects a known field given twice. Unknown members are left
// for extras (open objects) or dropped.
func (p *Processor) collect(o *objectSpec, fields []Field, d int) (seen uint32, r Reason, ok bool) {
	slots := &p.slots[d]
	for i := range fields {
		idx := o.index.getBytes(fields[i].Key)
		if idx == 0 {
			continue
		}
		idx--
		f := &o.fields[idx]
		if f.kind == kIgnore || f.kind == kBrowser || f.kind == kOS {
			continue
		}
		bit := uint32(1) << idx
		if seen&bit != 0 {
			return 0, Reason{f.path, msgDuplicate}, false
		}
		seen |= bit
		slots[idx] = fields[i].Val
	}
	return seen, Reason{}, true
}

// present returns the value of slot i of depth d, or nil when the field is
// absent or null (a null is taken as an absent optional field).
func (p *Processor) present(seen uint32, d, i int) Value {
	if seen&(1<<uint(i)) == 0 {
		return nil
	}
	v := p.slots[d][i]
	if v.Kind() == KindNull {
		return nil
	}
	return v
}

// member validates the value of field f (nil when absent) of an object of
// depth d and, unless absent, appends it as a member, after a comma if comma
// is set. wrote tells whether anything was appended.
func (p *Processor) member(f *fieldSpec, v Value, comma bool, d int) (wrote bool, r Reason, ok bool) {
	switch f.kind {
	case kIgnore:
		return false, Reason{}, true
	case kBrowser, kOS:
		p.key(f, comma)
		if f.kind == kBrowser {
			p.out = append(p.out, p.pre[p.preBrowser:p.preOS]...)
		} else {
			p.out = append(p.out, p.pre[p.preOS:]...)
		}
		return true, Reason{}, true
	}
	if v == nil {
		if f.required {
			return false, Reason{f.path, msgRequired}, false
		}
		if f.kind == kObject && f.obj.stamped {
			p.key(f, comma)
			r, ok = p.object(f, nil)
			return true, r, ok
		}
		return false, Reason{}, true
	}
	p.key(f, comma)
	switch f.kind {
	case kString:
		var s []byte
		if s, r, ok = p.checkString(f, v); ok {
			p.out = appendQuoted(p.out, s)
		}
	case kNumber:
		r, ok = numberReason(f, p.appendNumber(v, f.num))
	case kBool:
		switch v.Kind() {
		case KindTrue:
			p.out = append(p.out, "true"...)
			ok = true
		case KindFalse:
			p.out = append(p.out, "false"...)
			ok = true
		default:
			r = Reason{f.path, f.msg}
		}
	case kEnum:
		r, ok = p.enum(f, v)
	case kSceneID:
		r, ok = p.sceneID(f, v)
	case kVec:
		r, ok = p.vector(f, v)
	case kObject:
		r, ok = p.object(f, v)
	case kMap:
		r, ok = p.bag(f, v, d+1)
	default:
		r = Reason{f.path, f.msg}
	}
	return true, r, ok
}

func (p *Processor) key(f *fieldSpec, comma bool) {
	if comma {
		p.out = append(p.out, ',')
	}
	p.out = append(p.out, f.key...)
}

// checkString validates a string field and returns its bytes.
func (p *Processor) checkString(f *fieldSpec, v Value) ([]byte, Reason, bool) {
	if v == nil {
		return nil, Reason{f.path, msgRequired}, false
	}
	if v.Kind() != KindString {
		return nil, Reason{f.path, f.msg}, false
	}
	s := v.Str()
	n, valid := utf16Len(s)
	if !valid {
		return nil, Reason{f.path, InvalidText(s)}, false
	}
	if n < f.min || n > f.max {
		return nil, Reason{f.path, f.msg}, false
	}
	return s, Reason{}, true
}

// checkTS validates the envelope's ts: an integral number in [0, 2^53],
// decided on the exact decimal value.
func (p *Processor) checkTS(f *fieldSpec, v Value) (int64, Reason, bool) {
	if v == nil {
		return 0, Reason{f.path, msgRequired}, false
	}
	if v.Kind() != KindNumber {
		return 0, Reason{f.path, f.msg}, false
	}
	p.num = v.AppendNumber(p.num[:0])
	var n number
	switch checkNumber(p.num, &n) {
	case numBad:
		return 0, Reason{f.path, msgBadNumber}, false
	case numInfinite:
		return 0, Reason{f.path, msgNotFinite}, false
	}
	ts, ok := n.safeInteger()
	if !ok {
		return 0, Reason{f.path, f.msg}, false
	}
	return ts, Reason{}, true
}

// numVerdict is the outcome of checking a number against a rule.
type numVerdict uint8

const (
	numPass   numVerdict = iota
	numShape             // not a number, or outside the rule
	numSyntax            // not a JSON number
	numInf               // overflows a float64
)

// appendNumber appends v's raw token to p.out and checks it there under rule
// r; on any verdict but numPass the token is taken back out.
func (p *Processor) appendNumber(v Value, r numRule) numVerdict {
	if v.Kind() != KindNumber {
		return numShape
	}
	start := len(p.out)
	p.out = v.AppendNumber(p.out)
	if _, verdict := checkRawNumber(p.out[start:], r); verdict != numPass {
		p.out = p.out[:start]
		return verdict
	}
	return numPass
}

// checkRawNumber checks a raw number token under rule r.
func checkRawNumber(raw []byte, r numRule) ([]byte, numVerdict) {
	var n number
	switch checkNumber(raw, &n) {
	case numBad:
		return nil, numSyntax
	case numInfinite:
		return nil, numInf
	}
	if r == numFinite {
		return raw, numPass
	}
	x := n.value()
	var ok bool
	switch r {
	case numGE0:
		ok = x >= 0
	case numGT0:
		ok = x > 0
	case numUnit:
		ok = x >= 0 && x <= 1
	case numInt:
		ok = x == math.Trunc(x)
	case numIntGE0:
		ok = x >= 0 && x == math.Trunc(x)
	case numIntGT0:
		ok = x > 0 && x == math.Trunc(x)
	}
	if !ok {
		return nil, numShape
	}
	return raw, numPass
}

func numberReason(f *fieldSpec, v numVerdict) (Reason, bool) {
	switch v {
	case numPass:
		return Reason{}, true
	case numSyntax:
		return Reason{f.path, msgBadNumber}, false
	case numInf:
		return Reason{f.path, msgNotFinite}, false
	}
	return Reason{f.path, f.msg}, false
}

func (p *Processor) enum(f *fieldSpec, v Value) (Reason, bool) {
	if v.Kind() == KindString {
		s := v.Str()
		for _, e := range f.enum {
			if string(s) == e {
				p.out = append(p.out, '"')
				p.out = append(p.out, e...)
				p.out = append(p.out, '"')
				return Reason{}, true
			}
		}
	}
	return Reason{f.path, f.msg}, false
}

func (p *Processor) sceneID(f *fieldSpec, v Value) (Reason, bool) {
	if v.Kind() != KindString {
		return Reason{f.path, f.msg}, false
	}
	s := v.Str()
	if !ValidSceneID(s) {
		return Reason{f.path, f.msg}, false
	}
	p.out = append(p.out, '"')
	p.out = append(p.out, s...)
	p.out = append(p.out, '"')
	return Reason{}, true
}

func (p *Processor) vector(f *fieldSpec, v Value) (Reason, bool) {
	if v.Kind() != KindArray || v.Len() != f.vecLen {
		return Reason{f.path, f.msg}, false
	}
	p.out = append(p.out, '[')
	for i := 0; i < f.vecLen; i++ {
		if i > 0 {
			p.out = append(p.out, ',')
		}
		if verdict := p.appendNumber(v.At(i), f.num); verdict != numPass {
			return numberReason(f, verdict)
		}
	}
	p.out = append(p.out, ']')
	return Reason{}, true
}

// object validates a nested object (v nil: absent, for objects with
// server-stamped members) and appends it: known members in schema order, then
// for open objects the extra members that are kept, in input order.
func (p *Processor) object(f *fieldSpec, v Value) (Reason, bool) {
	o := f.obj
	d := o.depth
	var fields []Field
	var seen uint32
	if v != nil {
		if v.Kind() != KindObject {
			return Reason{f.path, f.msg}, false
		}
		fields = v.Fields(p.fields[d][:0])
		p.fields[d] = fields
		var r Reason
		var ok bool
		if seen, r, ok = p.collect(o, fields, d); !ok {
			return r, false
		}
	}
	p.out = append(p.out, '{')
	comma := false
	for i := range o.fields {
		wrote, r, ok := p.member(&o.fields[i], p.present(seen, d, i), comma, d)
		if !ok {
			return r, false
		}
		comma = comma || wrote
	}
	if o.open {
		if _, bad := p.extras(o, fields, d, comma); bad != "" {
			return Reason{f.path, bad}, false
		}
	}
	p.out = append(p.out, '}')
	return Reason{}, true
}

// scalarVerdict is the outcome of checking a scalar of a bag or an extra.
type scalarVerdict uint8

const (
	scalarOK scalarVerdict = iota
	scalarShape
	scalarUTF8
	scalarSyntax
	scalarInf
)

// scalar appends v if it is a string of at most 1024 characters, a finite
// number, a boolean or null.
func (p *Processor) scalar(v Value) scalarVerdict {
	switch v.Kind() {
	case KindNull:
		p.out = append(p.out, "null"...)
	case KindTrue:
		p.out = append(p.out, "true"...)
	case KindFalse:
		p.out = append(p.out, "false"...)
	case KindNumber:
		switch p.appendNumber(v, numFinite) {
		case numSyntax:
			return scalarSyntax
		case numInf:
			return scalarInf
		case numShape:
			return scalarShape
		}
	case KindString:
		s := v.Str()
		n, ok := utf16Len(s)
		if !ok {
			p.badText = InvalidText(s)
			return scalarUTF8
		}
		if n > maxScalarString {
			return scalarShape
		}
		p.out = appendQuoted(p.out, s)
	default:
		return scalarShape
	}
	return scalarOK
}

// bag validates user.traits or custom.props (object of depth d): at most 64
// entries with keys of 1–128 characters, each given once, and scalar values.
func (p *Processor) bag(f *fieldSpec, v Value, d int) (Reason, bool) {
	if v.Kind() != KindObject {
		return Reason{f.path, f.msg}, false
	}
	fields := v.Fields(p.fields[d][:0])
	p.fields[d] = fields
	if len(fields) > maxMapEntries {
		return Reason{f.path, msgMapSize}, false
	}
	p.out = append(p.out, '{')
	for i := range fields {
		k := fields[i].Key
		n, valid := utf16Len(k)
		if !valid {
			return Reason{f.path, InvalidText(k)}, false
		}
		if n < 1 || n > maxMapKey {
			return Reason{f.path, msgMapKey}, false
		}
		for j := 0; j < i; j++ {
			if string(fields[j].Key) == string(k) {
				return Reason{f.path, msgDuplicateK}, false
			}
		}
		if i > 0 {
			p.out = append(p.out, ',')
		}
		p.out = appendQuoted(p.out, k)
		p.out = append(p.out, ':')
		switch p.scalar(fields[i].Val) {
		case scalarShape:
			return Reason{f.path, msgMapValue}, false
		case scalarUTF8:
			return Reason{f.path, p.badText}, false
		case scalarSyntax:
			return Reason{f.path, msgBadNumber}, false
		case scalarInf:
			return Reason{f.path, msgNotFinite}, false
		}
	}
	p.out = append(p.out, '}')
	return Reason{}, true
}

// extras appends the kept unknown members of an open object of depth d (o nil:
// an extra object, all of whose members are unknown). Only the first 32
// unknown keys are considered; one is kept when its key has 1–128 characters
// and appears once in the object, and its value follows the rules of extra.
// Others are dropped silently. It returns whether a member precedes the next
// or, when a considered key or a string of a kept value is not valid text,
// why the event is rejected (bad).
func (p *Processor) extras(o *objectSpec, fields []Field, d int, comma bool) (_ bool, bad string) {
	considered := 0
	for i := range fields {
		k := fields[i].Key
		if o != nil && o.index.getBytes(k) != 0 {
			continue
		}
		if considered == maxExtraKeys {
			break
		}
		considered++
		n, valid := utf16Len(k)
		if !valid {
			return comma, InvalidText(k)
		}
		if n < 1 || n > maxMapKey || repeated(fields, i) {
			continue
		}
		mark := len(p.out)
		if comma {
			p.out = append(p.out, ',')
		}
		p.out = appendQuoted(p.out, k)
		p.out = append(p.out, ':')
		kept, bad := p.extra(fields[i].Val, d)
		if bad != "" {
			return comma, bad
		}
		if !kept {
			p.out = p.out[:mark]
			continue
		}
		comma = true
	}
	return comma, ""
}

// repeated reports whether the key of fields[i] appears elsewhere in fields.
func repeated(fields []Field, i int) bool {
	k := fields[i].Key
	for j := range fields {
		if j != i && string(fields[j].Key) == string(k) {
			return true
		}
	}
	return false
}

// extra appends the value of an extra member of an object of depth d: a
// scalar, an array of at most 64 scalars, or an object of depth at most
// maxDepth whose members follow the same rules. It returns false (and the
// caller drops the member) for anything else, and bad (the event is
// rejected) when a string in it is not valid text.
func (p *Processor) extra(v Value, d int) (kept bool, bad string) {
	switch v.Kind() {
	case KindArray:
		n := v.Len()
		if n > maxExtraArray {
			return false, ""
		}
		p.out = append(p.out, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				p.out = append(p.out, ',')
			}
			switch p.scalar(v.At(i)) {
			case scalarOK:
			case scalarUTF8:
				return false, p.badText
			default:
				return false, ""
			}
		}
		p.out = append(p.out, ']')
		return true, ""
	case KindObject:
		if d+1 > maxDepth {
			return false, ""
		}
		fields := v.Fields(p.fields[d+1][:0])
		p.fields[d+1] = fields
		p.out = append(p.out, '{')
		if _, bad := p.extras(nil, fields, d+1, false); bad != "" {
			return false, bad
		}
		p.out = append(p.out, '}')
		return true, ""
	}
	switch p.scalar(v) {
	case scalarOK:
		return true, ""
	case scalarUTF8:
		return false, p.badText
	}
	return false, ""
}
