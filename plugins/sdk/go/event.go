package sdk

import "errors"

// Errors returned by the edit methods of Event.
var (
	// ErrImmutable: the edit would change type, projectId, sessionId,
	// visitorId or ts, or replace the event as a whole. The host refuses
	// any output that changes these members, so the SDK refuses the edit
	// up front and leaves the event as it was.
	ErrImmutable = errors.New("sdk: type, projectId, sessionId, visitorId and ts cannot be edited")
	// ErrNotFound: a member named by the path does not exist.
	ErrNotFound = errors.New("sdk: no such member")
	// ErrNotObject: the path leads through something that is not an object.
	ErrNotObject = errors.New("sdk: not an object")
	// ErrConflict: the edit targets something inside a value that an
	// earlier edit of the same event already replaced or deleted.
	ErrConflict = errors.New("sdk: inside a value already replaced or deleted")
	// ErrForeign: the Value does not come from this event.
	ErrForeign = errors.New("sdk: value does not belong to this event")
	// ErrInvalid: the new value is not valid JSON (or a float is NaN or
	// infinite).
	ErrInvalid = errors.New("sdk: not a valid JSON value")
	// ErrNotEvent: the document is not a JSON object.
	ErrNotEvent = errors.New("sdk: an event must be a JSON object")
)

// IsImmutable reports whether a top-level member name is one the host
// owns: type, projectId, sessionId, visitorId, ts.
func IsImmutable(name string) bool {
	switch name {
	case "type", "projectId", "sessionId", "visitorId", "ts":
		return true
	}
	return false
}

// Event is one event of a batch: a view of its canonical JSON with a list
// of pending edits.
//
// Reads (Type, Get, Value methods) always see the event as received; edits
// are recorded as splices and only show in the output, which is built once
// after the handler returns by copying the unchanged byte ranges around
// them. An *Event passed to a handler is reused for the next event: do not
// keep it, or any Value from it, after the handler returns.
type Event struct {
	src     []byte
	index   int
	root    int
	rootEnd int
	members []member
	immut   []member // the immutable members present (after scanNames)
	typ     string   // (after scanNames)
	named   bool
	edits   []edit
	arena   []byte // encoded new values, referenced by edits
	tmp     []byte
	splices []splice
	scratch []member
}

type editKind uint8

const (
	editReplace editKind = iota + 1 // replace the value at [start,end)
	editRemove                      // remove the member at [start,end) of the object at parent
	editInsert                      // add a member at the end of the object at parent
)

type edit struct {
	kind       editKind
	start, end int
	parent     int
	data, n    int    // the new bytes in arena
	name       string // editInsert: the new member's name
}

type splice struct {
	start, end int
	data, n    int
	comma      bool
}

// ParseEvent checks that b is one JSON object and returns an Event over
// it (b is not copied). It is the entry point for tests and host-side
// tools; inside a plugin the SDK hands events to the handler itself.
func ParseEvent(b []byte) (*Event, error) {
	e := new(Event)
	if err := e.reset(b, 0, true); err != nil {
		return nil, err
	}
	return e, nil
}

// reset points e at a new document and indexes its top-level members.
// With validate, the whole document is checked as JSON (scan); without,
// only its structure (indexObject), which is how events from the host
// are read.
func (e *Event) reset(b []byte, index int, validate bool) error {
	e.src, e.index, e.typ, e.named = nil, index, "", false
	e.root, e.rootEnd = 0, 0
	e.members = e.members[:0]
	e.immut = e.immut[:0]
	e.edits = e.edits[:0]
	e.arena = e.arena[:0]
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return ErrNotEvent
	}
	var end int
	var err error
	if validate {
		end, err = scan(b, i, &e.members)
	} else {
		end, err = indexObject(b, i, &e.members)
	}
	if err != nil {
		e.members = e.members[:0]
		return err
	}
	if j := skipSpace(b, end); j != len(b) {
		e.members = e.members[:0]
		return syntaxErr(j, "data after the event")
	}
	e.src, e.root, e.rootEnd = b, i, end
	return nil
}

// scanNames finds the type and the immutable members, on first need:
// most events are neither asked for their type by name nor edited.
func (e *Event) scanNames() {
	if e.named || e.src == nil {
		return
	}
	e.named = true
	b := e.src
	var buf [32]byte
	for _, m := range e.members {
		name := b[m.key+1 : m.keyEnd-1]
		if m.esc {
			name = appendUnescaped(buf[:0], name)
		}
		switch string(name) {
		case "type":
			if e.typ == "" && b[m.val] == '"' {
				e.typ = internType(Value{doc: b, off: m.val, end: m.end})
			}
			e.immut = append(e.immut, m)
		case "projectId", "sessionId", "visitorId", "ts":
			e.immut = append(e.immut, m)
		}
	}
}

// internType returns the event type as a string, without allocating for
// the 27 types of the catalog.
func internType(v Value) string {
	raw := v.doc[v.off+1 : v.end-1]
	switch string(raw) {
	case "session_start":
		return "session_start"
	case "session_end":
		return "session_end"
	case "frame_perf":
		return "frame_perf"
	case "camera_sample":
		return "camera_sample"
	case "node_transform":
		return "node_transform"
	case "pointer_move":
		return "pointer_move"
	case "pointer_click":
		return "pointer_click"
	case "pointer_down":
		return "pointer_down"
	case "pointer_up":
		return "pointer_up"
	case "camera_gesture":
		return "camera_gesture"
	case "mesh_interaction":
		return "mesh_interaction"
	case "mesh_visibility":
		return "mesh_visibility"
	case "hover_dwell":
		return "hover_dwell"
	case "compile_stall":
		return "compile_stall"
	case "resource_sample":
		return "resource_sample"
	case "capability_change":
		return "capability_change"
	case "asset_load":
		return "asset_load"
	case "scene_change":
		return "scene_change"
	case "viewport_resize":
		return "viewport_resize"
	case "visibility_change":
		return "visibility_change"
	case "focus_change":
		return "focus_change"
	case "context_lost":
		return "context_lost"
	case "context_restored":
		return "context_restored"
	case "graphics_diagnostic":
		return "graphics_diagnostic"
	case "runtime_error":
		return "runtime_error"
	case "input_action":
		return "input_action"
	case "custom":
		return "custom"
	}
	return v.String()
}

// Type returns the event's type ("" if it has none, which the host never
// sends).
func (e *Event) Type() string {
	e.scanNames()
	return e.typ
}

// Index returns the event's position in its batch.
func (e *Event) Index() int { return e.index }

// Bytes returns the event's JSON as received. It aliases the input buffer:
// do not modify it, and copy it to keep it past the handler call.
func (e *Event) Bytes() []byte { return e.src[:len(e.src):len(e.src)] }

// Get returns the value at a path of member names: Get("url"),
// Get("pageMeta", "title"). With no names it returns the whole event.
func (e *Event) Get(path ...string) (Value, bool) {
	if e.src == nil {
		return Value{}, false
	}
	if len(path) == 0 {
		return Value{doc: e.src, off: e.root, end: e.rootEnd, key: -1, parent: -1}, true
	}
	for _, m := range e.members {
		if m.nameIs(e.src, path[0]) {
			v := Value{doc: e.src, off: m.val, end: m.end, key: m.key, parent: e.root}
			return v.Get(path[1:]...)
		}
	}
	return Value{}, false
}

// Edited reports whether the event has pending edits. The SDK answers
// op 2 (replace) for an edited event the handler keeps.
func (e *Event) Edited() bool { return len(e.edits) > 0 }

// Revert discards the pending edits.
func (e *Event) Revert() {
	e.edits = e.edits[:0]
	e.arena = e.arena[:0]
}

// SetString sets the member at path to the string s, adding the member
// when its object exists but lacks it. s is escaped as JSON needs
// (quotes, backslashes, control characters; invalid UTF-8 becomes
// U+FFFD). Errors: ErrImmutable, ErrNotFound (a parent object is
// missing), ErrNotObject, ErrConflict.
func (e *Event) SetString(path []string, s string) error {
	e.tmp = AppendQuoted(e.tmp[:0], s)
	return e.set(path, e.tmp)
}

// SetFloat sets the member at path to the number f (ErrInvalid for NaN or
// infinities). See SetString for the other rules.
func (e *Event) SetFloat(path []string, f float64) error {
	b, ok := appendFloat(e.tmp[:0], f)
	if !ok {
		return ErrInvalid
	}
	e.tmp = b
	return e.set(path, b)
}

// SetRaw sets the member at path to a JSON value given as text, which must
// be exactly one valid JSON value (ErrInvalid otherwise). See SetString
// for the other rules.
func (e *Event) SetRaw(path []string, raw []byte) error {
	v, err := ParseValue(raw)
	if err != nil {
		return ErrInvalid
	}
	return e.set(path, v.Raw())
}

// Delete removes the member at path (ErrNotFound when it is absent,
// ErrImmutable for the host-owned members).
func (e *Event) Delete(path ...string) error {
	if len(path) == 0 || len(path) == 1 && IsImmutable(path[0]) {
		return ErrImmutable
	}
	parent, err := e.parentOf(path)
	if err != nil {
		return err
	}
	name := path[len(path)-1]
	if v, ok := e.child(parent, name); ok {
		return e.remove(v)
	}
	for i, ed := range e.edits {
		if ed.kind == editInsert && ed.parent == parent.off && ed.name == name {
			e.edits = append(e.edits[:i], e.edits[i+1:]...)
			return nil
		}
	}
	return ErrNotFound
}

// ReplaceString replaces the value v (from this event: a member, an array
// element, anything but the event itself or a host-owned member) with the
// string s.
func (e *Event) ReplaceString(v Value, s string) error {
	if !e.owns(v) {
		return ErrForeign
	}
	e.tmp = AppendQuoted(e.tmp[:0], s)
	return e.replace(v, e.tmp)
}

// ReplaceRaw replaces the value v with a JSON value given as text.
func (e *Event) ReplaceRaw(v Value, raw []byte) error {
	if !e.owns(v) {
		return ErrForeign
	}
	nv, err := ParseValue(raw)
	if err != nil {
		return ErrInvalid
	}
	return e.replace(v, nv.Raw())
}

// DeleteMember removes the object member whose value is v (as returned by
// Get or Members). Array elements cannot be deleted this way: replace the
// whole array instead (ErrNotObject).
func (e *Event) DeleteMember(v Value) error {
	if !e.owns(v) {
		return ErrForeign
	}
	if v.key < 0 || v.parent < 0 {
		return ErrNotObject
	}
	return e.remove(v)
}

func (e *Event) owns(v Value) bool {
	return e.src != nil && len(v.doc) == len(e.src) && &v.doc[0] == &e.src[0] &&
		v.off >= e.root && v.end <= e.rootEnd && v.off < v.end
}

func (e *Event) parentOf(path []string) (Value, error) {
	parent, ok := e.Get(path[:len(path)-1]...)
	if !ok {
		return Value{}, ErrNotFound
	}
	if parent.Kind() != Object {
		return Value{}, ErrNotObject
	}
	return parent, nil
}

func (e *Event) set(path []string, data []byte) error {
	if len(path) == 0 || len(path) == 1 && IsImmutable(path[0]) {
		return ErrImmutable
	}
	parent, err := e.parentOf(path)
	if err != nil {
		return err
	}
	name := path[len(path)-1]
	if v, ok := e.child(parent, name); ok {
		return e.replace(v, data)
	}
	return e.insert(parent, name, data)
}

// child looks name up in the object parent, using the index for the
// event's own members.
func (e *Event) child(parent Value, name string) (Value, bool) {
	if parent.off != e.root {
		return parent.Get(name)
	}
	for _, m := range e.members {
		if m.nameIs(e.src, name) {
			return Value{doc: e.src, off: m.val, end: m.end, key: m.key, parent: e.root}, true
		}
	}
	return Value{}, false
}

func (e *Event) touchesImmutable(start, end int) bool {
	e.scanNames()
	for _, m := range e.immut {
		if start < m.end && m.key < end {
			return true
		}
	}
	return false
}

func (e *Event) store(data []byte) (int, int) {
	off := len(e.arena)
	e.arena = append(e.arena, data...)
	return off, len(data)
}

// within reports whether edit ed lies inside [start,end) and so is
// superseded by an edit of that whole range.
func (ed edit) within(start, end int) bool {
	if ed.kind == editInsert {
		return start <= ed.parent && ed.parent < end
	}
	return start <= ed.start && ed.end <= end
}

// dropWithin removes the edits inside [start,end), and the edit at index
// also (-1 for none).
func (e *Event) dropWithin(start, end, also int) {
	kept := e.edits[:0]
	for i, ed := range e.edits {
		if i == also || ed.within(start, end) {
			continue
		}
		kept = append(kept, ed)
	}
	e.edits = kept
}

func (e *Event) replace(v Value, data []byte) error {
	start, end := v.off, v.end
	if start <= e.root && e.rootEnd <= end || e.touchesImmutable(start, end) {
		return ErrImmutable
	}
	restore := -1
	for i, ed := range e.edits {
		switch ed.kind {
		case editReplace:
			if ed.start == start && ed.end == end {
				e.edits[i].data, e.edits[i].n = e.store(data)
				return nil
			}
			if ed.start <= start && end <= ed.end {
				return ErrConflict
			}
		case editRemove:
			if ed.start <= start && end <= ed.end {
				if ed.start != v.key || ed.end != end {
					return ErrConflict
				}
				restore = i // setting a deleted member brings it back
			}
		}
	}
	e.dropWithin(start, end, restore)
	off, n := e.store(data)
	e.edits = append(e.edits, edit{kind: editReplace, start: start, end: end, parent: v.parent, data: off, n: n})
	return nil
}

func (e *Event) remove(v Value) error {
	start, end := v.key, v.end
	if e.touchesImmutable(start, end) {
		return ErrImmutable
	}
	for _, ed := range e.edits {
		if ed.kind != editInsert && ed.start <= start && end <= ed.end {
			if ed.kind == editRemove {
				return nil // already gone
			}
			return ErrConflict
		}
	}
	e.dropWithin(start, end, -1)
	e.edits = append(e.edits, edit{kind: editRemove, start: start, end: end, parent: v.parent})
	return nil
}

func (e *Event) insert(parent Value, name string, data []byte) error {
	if parent.off == e.root && IsImmutable(name) {
		return ErrImmutable
	}
	for i, ed := range e.edits {
		switch ed.kind {
		case editInsert:
			if ed.parent == parent.off && ed.name == name {
				e.edits[i].data, e.edits[i].n = e.storeMember(name, data)
				return nil
			}
		default:
			if ed.start <= parent.off && parent.end <= ed.end {
				return ErrConflict
			}
		}
	}
	off, n := e.storeMember(name, data)
	e.edits = append(e.edits, edit{kind: editInsert, start: parent.end - 1, end: parent.end - 1,
		parent: parent.off, data: off, n: n, name: name})
	return nil
}

func (e *Event) storeMember(name string, data []byte) (int, int) {
	off := len(e.arena)
	e.arena = AppendQuoted(e.arena, name)
	e.arena = append(e.arena, ':')
	e.arena = append(e.arena, data...)
	return off, len(e.arena) - off
}

// AppendJSON appends the event with its pending edits applied to dst (the
// event as received when there are none).
func (e *Event) AppendJSON(dst []byte) ([]byte, error) {
	if e.src == nil {
		return dst, ErrNotEvent
	}
	if len(e.edits) == 0 {
		return append(dst, e.src...), nil
	}
	sp := e.splices[:0]
	for i, ed := range e.edits {
		if ed.kind == editReplace {
			sp = append(sp, splice{start: ed.start, end: ed.end, data: ed.data, n: ed.n})
			continue
		}
		seen := false
		for _, prev := range e.edits[:i] {
			if prev.kind != editReplace && prev.parent == ed.parent {
				seen = true
				break
			}
		}
		if !seen {
			sp = e.objectSplices(sp, ed.parent)
		}
	}
	// insertion sort by start; stable, and edits are few
	for i := 1; i < len(sp); i++ {
		for j := i; j > 0 && sp[j].start < sp[j-1].start; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	e.splices = sp
	pos := 0
	for _, s := range sp {
		if s.start < pos || s.end < s.start || s.end > len(e.src) {
			return dst, ErrConflict // cannot happen: edits are kept disjoint
		}
		dst = append(dst, e.src[pos:s.start]...)
		if s.comma {
			dst = append(dst, ',')
		}
		dst = append(dst, e.arena[s.data:s.data+s.n]...)
		pos = s.end
	}
	return append(dst, e.src[pos:]...), nil
}

// objectSplices turns the removals and insertions in the object at parent
// into splices. A removed member takes the comma before it with it when a
// kept member precedes it, else the separator after it, so that any set of
// removals leaves a well-formed object.
func (e *Event) objectSplices(sp []splice, parent int) []splice {
	mems := e.scratch[:0]
	for i := parent + 1; ; {
		m, next, ok := nextMember(e.src, i)
		if !ok {
			break
		}
		mems = append(mems, m)
		i = next
	}
	e.scratch = mems
	kept := false
	for j, m := range mems {
		if !e.removed(parent, m.key) {
			kept = true
			continue
		}
		switch {
		case kept:
			sp = append(sp, splice{start: mems[j-1].end, end: m.end})
		case j+1 < len(mems):
			sp = append(sp, splice{start: m.key, end: mems[j+1].key})
		default:
			sp = append(sp, splice{start: m.key, end: m.end})
		}
	}
	for _, ed := range e.edits {
		if ed.kind == editInsert && ed.parent == parent {
			sp = append(sp, splice{start: ed.start, end: ed.end, data: ed.data, n: ed.n, comma: kept})
			kept = true
		}
	}
	return sp
}

func (e *Event) removed(parent, key int) bool {
	for _, ed := range e.edits {
		if ed.kind == editRemove && ed.parent == parent && ed.start == key {
			return true
		}
	}
	return false
}
