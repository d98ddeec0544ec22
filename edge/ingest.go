package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	rtrace "runtime/trace"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonscan"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// ingestCtx is the pooled per-request state of the write path: parser,
// buffers, batch and processor are reused, so a request in steady state
// allocates nothing per event.
type ingestCtx struct {
	tape    jsonvalue.Tape   // the write path's parser
	parser  jsonvalue.Parser // the parser of what the tape refuses
	slotted bool             // holds one of the server's ingest slots (admission)
	pnum    uint32           // the project the slot is held for
	body    []byte
	batch   core.Batch
	proc    core.Processor
	info    core.RequestInfo
	errs    []eventError

	accepted, rejected, filtered int
	refusals                     int // bodies the tape refused, decoded again (decodeJSON)
	stripped                     [core.NumStrips]int
	// dropped counts filtered and rejected events by type until the body
	// is known to be well formed; then they go to the metrics.
	dropped [core.NumEventTypes]struct{ filtered, rejected int32 }
}

type eventError struct {
	index  int
	reason core.Reason
}

// maxReportedErrors bounds the errors list of a response (docs/API.md, "Response").
const maxReportedErrors = 20

func (ic *ingestCtx) reset() {
	ic.batch.Reset()
	ic.errs = ic.errs[:0]
	ic.accepted, ic.rejected, ic.filtered, ic.refusals = 0, 0, 0, 0
	ic.stripped = [core.NumStrips]int{}
	ic.dropped = [core.NumEventTypes]struct{ filtered, rejected int32 }{}
	ic.info = core.RequestInfo{}
	ic.tape.Release()
	if cap(ic.body) > 4<<20 { // do not pin a rare huge body in the pool
		ic.body = nil
	}
}

type bodyFormat uint8

const (
	formatJSON bodyFormat = iota
	formatNDJSON
)

// parseContentType maps Content-Type to a body format; ok=false → 415.
func parseContentType(ct []byte) (bodyFormat, bool) {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	switch {
	case len(ct) == 0,
		asciiEqualFold(ct, "application/json"),
		asciiEqualFold(ct, "text/plain"):
		return formatJSON, true
	case asciiEqualFold(ct, "application/x-ndjson"),
		asciiEqualFold(ct, "application/ndjson"),
		asciiEqualFold(ct, "application/jsonl"):
		return formatNDJSON, true
	}
	return 0, false
}

// collect is POST /api/v1/collect.
func (s *ingestAPI) collect(ctx *fasthttp.RequestCtx, pathKey []byte) {
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: POST a batch of events")
		return
	}
	start := time.Now()
	defer s.m.requestDur.UpdateDuration(start)
	defer rtrace.StartRegion(context.Background(), "ingest").End()
	// Authentication (a SHA-256 and a map lookup) and the rate limits come
	// before admission, so the slot is taken for a known project, and a
	// request refused outright never waits for one.
	now := s.now()
	key := s.keyBufs.Get().(*[32]byte)
	project, ok := s.authenticate(ctx, core.CapIngest, pathKey, true, key)
	kh := keyHash64(key)
	s.keyBufs.Put(key)
	if !ok {
		return
	}
	ip := s.clientAddr(ctx)
	if ok, retry := s.ipLim.Allow(HashIP(ip), now); !ok {
		s.tooMany(ctx, retry, "client address")
		return
	}
	if ok, retry := s.keyLimiter(project).Allow(kh, now); !ok {
		s.tooMany(ctx, retry, "API key")
		return
	}
	// Admission: requests that pile up in a burst or a stall wait in
	// arrival order holding no context and no buffers, and no project
	// holds more than its share of the slots (admission.go).
	pnum := project.ProjectNum()
	admitted, waited := s.adm.acquire(pnum, maxAdmissionWait)
	s.m.admitDur.UpdateDuration(start)
	if waited {
		s.m.admitWaits.Inc()
	}
	if !admitted {
		s.m.busy.Inc()
		ctx.Response.Header.Set("Retry-After", "1")
		s.fail(ctx, fasthttp.StatusServiceUnavailable, "server busy: too many ingest requests waiting; retry")
		return
	}
	ic := s.getCtx()
	ic.slotted, ic.pnum = true, pnum
	defer s.putCtx(ic)
	defer s.release(ic)
	enc, ok := ParseEncoding(ctx.Request.Header.Peek(fasthttp.HeaderContentEncoding))
	if !ok {
		s.fail(ctx, fasthttp.StatusUnsupportedMediaType, unsupportedEncodingMsg(ctx.Request.Header.Peek(fasthttp.HeaderContentEncoding)))
		return
	}
	format, ok := parseContentType(ctx.Request.Header.ContentType())
	if !ok {
		s.fail(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported Content-Type: use application/json, text/plain or application/x-ndjson")
		return
	}
	if err := s.ready(); err != nil {
		s.unavailable(ctx, "storage cannot take writes: "+errText(err), 30)
		return
	}
	wire := ctx.Request.Body()
	status, msg := s.ingest(ic, project, ip, ctx.Request.Header.UserAgent(), enc, format, wire, now)
	switch status {
	case fasthttp.StatusOK:
		s.writeIngestResponse(ctx, ic)
	case statusPluginBusy:
		s.unavailable(ctx, msg, 1)
	case fasthttp.StatusServiceUnavailable:
		s.unavailable(ctx, msg, 5)
	default:
		s.fail(ctx, status, msg)
	}
}

// statusPluginBusy is ingest's status for a batch refused with
// core.ErrBusy: 503, answered with a shorter Retry-After than storage's.
const statusPluginBusy = 1503

// ingest runs the write path for one request body: decompress under the cap,
// decode, validate, stamp the visitor hash, gate, filter, and commit. It
// returns the HTTP status and, unless 200, the error message; on 200 the
// counts are in ic. It is the whole path below HTTP, so benchmarks and tests
// can drive it directly.
func (s *ingestAPI) ingest(ic *ingestCtx, project core.Project, ip netip.Addr, ua []byte, enc Encoding, format bodyFormat, wire []byte, now time.Time) (int, string) {
	s.m.bytesIn[enc].Add(len(wire))
	if len(wire) == 0 {
		return fasthttp.StatusBadRequest, "empty body: send {\"events\":[…]}"
	}
	t0 := time.Now()
	data, err := s.dec.Decompress(ic.body[:0], wire, enc)
	if enc != EncIdentity && cap(data) > cap(ic.body) {
		ic.body = data[:0]
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return fasthttp.StatusRequestEntityTooLarge,
				"decompressed body exceeds " + strconv.Itoa(s.dec.Limit()) + " bytes (COLLECTOR_BODY_LIMIT): send smaller batches"
		}
		return fasthttp.StatusBadRequest, "cannot decode " + enc.String() + " body: " + StreamErrorReason(err)
	}
	s.m.bytesDec.Add(len(data))

	ic.batch.ProjectID = project.ProjectID()
	ic.batch.ProjectNum = project.ProjectNum()
	ic.batch.ReceivedAt = now.UnixMilli()
	ic.info.ProjectID = ic.batch.ProjectID
	ic.info.Channels = project.Channels()
	ic.info.Browser, ic.info.OS = core.ClassifyUA(ua)
	s.hasher.Hash(&ic.info.VisitorID, ic.batch.ProjectID, ip, ua, now)
	ic.proc.Begin(&ic.batch, &ic.info)
	ic.batch.Info = &ic.info

	var msg string
	if format == formatNDJSON {
		msg = s.decodeNDJSON(ic, data)
	} else {
		msg = s.decodeJSON(ic, data)
	}
	if msg != "" {
		return fasthttp.StatusBadRequest, msg
	}
	for t, n := range ic.dropped {
		if n.filtered > 0 {
			s.m.events[t][core.Filtered].Add(int(n.filtered))
		}
		if n.rejected > 0 {
			s.m.events[t][core.Rejected].Add(int(n.rejected))
		}
	}
	ic.stripped = ic.proc.Stripped()
	s.m.decodeDur.UpdateDuration(t0)

	if s.filter != nil && len(ic.batch.Events) > 0 {
		if err := s.filter.Apply(context.Background(), &ic.batch); err != nil {
			// A plugin failure is handled by its policy inside Apply; an
			// error here means the batch could not run its plugins for
			// want of room (ErrBusy), or the quarantine could not be
			// written. Either way nothing of it is kept.
			if errors.Is(err, core.ErrBusy) {
				s.m.pluginBusy.Inc()
				return statusPluginBusy, "plugin capacity busy: this project's plugins or the node's plugin budget stayed in use; nothing of this batch was stored or quarantined; retry"
			}
			s.log.Error("filter chain failed", "project", ic.batch.ProjectID, "err", err)
			return fasthttp.StatusServiceUnavailable, "could not set the batch apart after its plugin failed; nothing of this batch was stored"
		}
	}
	t1 := time.Now()
	if err := s.sink.Commit(context.Background(), &ic.batch); err != nil {
		if errors.Is(err, core.ErrTooLarge) {
			return fasthttp.StatusRequestEntityTooLarge, err.Error()
		}
		s.m.commitErrs.Inc()
		if !errors.Is(err, core.ErrUnavailable) {
			s.log.Error("commit failed", "project", ic.batch.ProjectID, "err", err)
		}
		return fasthttp.StatusServiceUnavailable, "storage cannot take writes: " + errText(err) + "; nothing of this batch was stored"
	}
	s.m.commitDur.UpdateDuration(t1)
	if s.live != nil {
		s.live.observe(&ic.batch)
	}
	ic.accepted = len(ic.batch.Events)
	ic.filtered += ic.batch.Filtered
	s.countEvents(ic)
	return fasthttp.StatusOK, ""
}

func errText(err error) string {
	msg := err.Error()
	if p := core.ErrUnavailable.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// decodeJSON processes a body {"schemaVersion","events":[…],"meta"} (or a
// bare array of events). It returns a message for a 400 when the batch as a
// whole is malformed, and "" otherwise.
//
// Each event is parsed on its own, right before it is validated, instead of
// the whole body at once: a 200-event body parses to some 8,000 values, and
// validating event 1 after parsing event 200 reads them back from far
// outside the CPU's caches. The body is split with jsonscan, which only
// finds where each value ends; every piece is then parsed by fastjson and
// every byte between pieces is checked here, so a body is accepted exactly
// when it is valid JSON, as a single parse would decide. Syntax errors take
// precedence over the other 400s, as they would after a single parse: the
// whole body is checked before those are returned.
//
// Events and members are parsed by the tape (jsonvalue.Tape), which finds
// each value's end as it parses it. The tape reads a strict subset of what
// fastjson reads; when it refuses anything, or the body is malformed, the
// body is decoded again from the start by the splitter and fastjson
// (decodeJSONSplit), which decides it and names its error exactly as it
// always has: the tape only makes the common case faster.
func (s *ingestAPI) decodeJSON(ic *ingestCtx, data []byte) string {
	nbuf, nev, nspan := len(ic.batch.Buf), len(ic.batch.Events), len(ic.batch.Spans)
	d := bodyDecoder{s: s, ic: ic, data: data, fast: true}
	msg := d.decode()
	if !d.refused {
		return msg
	}
	// Forget what the tape's pass added, and decode again.
	b := &ic.batch
	b.Buf, b.Events, b.Spans = b.Buf[:nbuf], b.Events[:nev], b.Spans[:nspan]
	ic.errs = ic.errs[:0]
	ic.rejected, ic.filtered = 0, 0
	ic.dropped = [core.NumEventTypes]struct{ filtered, rejected int32 }{}
	ic.proc.Restart()
	ic.refusals++
	return s.decodeJSONSplit(ic, data)
}

// decodeJSONSplit is decodeJSON with the splitter and fastjson alone.
func (s *ingestAPI) decodeJSONSplit(ic *ingestCtx, data []byte) string {
	d := bodyDecoder{s: s, ic: ic, data: data}
	return d.decode()
}

type bodyDecoder struct {
	s    *ingestAPI
	ic   *ingestCtx
	data []byte
	i    int
	n    int    // elements of the events array seen
	msg  string // the first error other than a syntax error
	// badVersion: the schemaVersion is not 1.x, which is reported before
	// any other error but a syntax error.
	badVersion bool
	// fast: values are parsed by the tape; refused: the tape refused a
	// value, or the body is malformed, and it must be decoded again
	// without the tape (decodeJSON).
	fast, refused bool
}

// malformed is the message of a syntax error at d.i (err from the parser,
// or nil for a structural error found by the splitter).
func (d *bodyDecoder) malformed(err error) string {
	if d.fast {
		d.refused = true
		return "refused by the tape"
	}
	var ee *jsonvalue.EscapeError
	if errors.As(err, &ee) {
		return "malformed JSON body: invalid escape " + strconv.Quote(ee.Seq) + " in a string at offset " + strconv.Itoa(d.i+ee.Offset)
	}
	if err != nil {
		return "malformed JSON body: " + truncate(err.Error(), 200)
	}
	return "malformed JSON body: unexpected " + d.near() + " at offset " + strconv.Itoa(d.i)
}

func (d *bodyDecoder) near() string {
	if d.i >= len(d.data) {
		return "end of body"
	}
	return strconv.Quote(string(d.data[d.i:min(len(d.data), d.i+16)]))
}

func (d *bodyDecoder) decode() string {
	data := d.data
	d.i = jsonscan.SkipSpace(data, 0)
	if d.i == len(data) {
		return d.malformed(nil)
	}
	var bad string
	switch data[d.i] {
	case '[':
		bad = d.events()
	case '{':
		bad = d.object()
	default:
		// Valid JSON, but not an object or array, or not JSON at all.
		if d.fast {
			return d.malformed(nil)
		}
		if _, err := d.ic.parser.ParseBytes(data); err != nil {
			return d.malformed(err)
		}
		return `body must be a JSON object {"events":[…]}`
	}
	if bad != "" {
		return bad
	}
	if d.i = jsonscan.SkipSpace(data, d.i); d.i != len(data) {
		return d.malformed(nil)
	}
	if d.badVersion {
		return `unsupported schemaVersion: this collector reads "1.x"`
	}
	return d.msg
}

// object reads the body's top-level object from d.i.
func (d *bodyDecoder) object() string {
	data := d.data
	d.i = jsonscan.SkipSpace(data, d.i+1)
	sawEvents, sawVersion := false, false
	if d.i < len(data) && data[d.i] == '}' {
		d.i++
		d.msg = `missing "events" array`
		return ""
	}
	for {
		if d.i >= len(data) || data[d.i] != '"' {
			return d.malformed(nil)
		}
		kend := jsonscan.SkipString(data, d.i)
		if kend < 0 {
			return d.malformed(nil)
		}
		key := data[d.i+1 : kend-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			// An escaped key: fastjson unescapes it.
			if d.fast {
				return d.malformed(nil)
			}
			v, err := d.ic.parser.ParseBytes(data[d.i:kend])
			if err != nil {
				return d.malformed(err)
			}
			key = v.GetStringBytes()
		}
		d.i = jsonscan.SkipSpace(data, kend)
		if d.i >= len(data) || data[d.i] != ':' {
			return d.malformed(nil)
		}
		d.i = jsonscan.SkipSpace(data, d.i+1)
		switch {
		case string(key) == "events" && !sawEvents:
			sawEvents = true
			if d.i < len(data) && data[d.i] == '[' {
				if bad := d.events(); bad != "" {
					return bad
				}
				break
			}
			if _, bad := d.value(); bad != "" {
				return bad
			}
			if d.msg == "" {
				d.msg = `"events" must be an array`
			}
		case string(key) == "schemaVersion" && !sawVersion:
			sawVersion = true
			v, bad := d.value()
			if bad != "" {
				return bad
			}
			b := v.Str()
			d.badVersion = v.Kind() != core.KindString || !(string(b) == "1" || bytes.HasPrefix(b, []byte("1.")))
		default:
			if _, bad := d.value(); bad != "" {
				return bad
			}
		}
		if more, bad := d.next('}'); bad != "" || !more {
			if bad == "" && !sawEvents && d.msg == "" {
				d.msg = `missing "events" array`
			}
			return bad
		}
	}
}

// next moves past what follows a member or an element: a comma (more is
// true) or the closing bracket.
func (d *bodyDecoder) next(closer byte) (more bool, bad string) {
	d.i = jsonscan.SkipSpace(d.data, d.i)
	switch {
	case d.i >= len(d.data):
		return false, d.malformed(nil)
	case d.data[d.i] == ',':
		d.i = jsonscan.SkipSpace(d.data, d.i+1)
		return true, ""
	case d.data[d.i] == closer:
		d.i++
		return false, ""
	}
	return false, d.malformed(nil)
}

// value parses the value at d.i and moves past it: with the tape, or by
// finding its end with the splitter and parsing that with fastjson. The
// value is valid until the parser's next use.
func (d *bodyDecoder) value() (core.Value, string) {
	if d.fast {
		v, end, ok := d.ic.tape.Parse(d.data, d.i)
		if !ok {
			return nil, d.malformed(nil)
		}
		d.i = end
		return v, ""
	}
	end, escaped := jsonscan.SkipValueEscaped(d.data, d.i)
	if end < 0 {
		// Unterminated: fastjson names the error, if it finds one.
		_, err := d.ic.parser.ParseBytes(d.data[d.i:])
		return nil, d.malformed(err)
	}
	v, err := d.ic.parser.Parse(d.data[d.i:end], escaped)
	if err != nil {
		return nil, d.malformed(err)
	}
	if end-d.i == 1 && (d.data[d.i] == '+' || d.data[d.i] == '-') {
		// A lone sign: fastjson takes it as a number when it ends the
		// input, as the value cut out of the body does, but not when a
		// delimiter follows it, as in the body.
		return nil, d.malformed(fmt.Errorf("cannot parse number: unexpected char: %q", d.data[d.i:end]))
	}
	d.i = end
	return jsonvalue.Wrap(v), ""
}

// events reads the events array at d.i, parsing and processing each event
// in turn (only checking them once the batch is known to be refused).
func (d *bodyDecoder) events() string {
	data := d.data
	d.i = jsonscan.SkipSpace(data, d.i+1)
	if d.i < len(data) && data[d.i] == ']' {
		d.i++
		if d.msg == "" {
			d.msg = "empty batch: send at least one event"
		}
		return ""
	}
	for {
		v, bad := d.value()
		if bad != "" {
			return bad
		}
		d.n++
		if d.n > MaxBatchEvents && d.msg == "" {
			d.msg = "too many events in one batch: at most " + strconv.Itoa(MaxBatchEvents)
		}
		if d.msg == "" && !d.badVersion {
			d.s.addEvent(d.ic, d.n-1, v)
		}
		if more, bad := d.next(']'); bad != "" || !more {
			return bad
		}
	}
}

// decodeNDJSON processes one event per line. A line that is not JSON makes
// the whole body malformed.
func (s *ingestAPI) decodeNDJSON(ic *ingestCtx, data []byte) string {
	n := 0
	// esc is the distance from data to its first backslash (-1: none): one
	// scan of the body finds out which lines need their escapes checked.
	esc := bytes.IndexByte(data, '\\')
	for line := 1; len(data) > 0; line++ {
		var l []byte
		next := len(data)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, next = data[:i], i+1
		} else {
			l = data
		}
		escaped := esc >= 0 && esc < len(l)
		if data = data[next:]; esc >= 0 {
			if esc -= next; esc < 0 {
				esc = bytes.IndexByte(data, '\\')
			}
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if n == MaxBatchEvents {
			return "too many events in one batch: at most " + strconv.Itoa(MaxBatchEvents)
		}
		// The tape parses the line when it can (it refuses a line that is
		// not an object); fastjson decides and names the rest.
		if v, end, ok := ic.tape.Parse(l, 0); ok && end == len(l) && v.Kind() == core.KindObject {
			s.addEvent(ic, n, v)
			n++
			continue
		}
		v, err := ic.parser.Parse(l, escaped)
		if err != nil {
			return "malformed JSON on line " + strconv.Itoa(line) + ": " + truncate(err.Error(), 200)
		}
		s.addEvent(ic, n, jsonvalue.Wrap(v))
		n++
	}
	if n == 0 {
		return "empty batch: send at least one event"
	}
	return ""
}

func (s *ingestAPI) addEvent(ic *ingestCtx, i int, ev core.Value) {
	out, t, reason := ic.proc.Add(ev)
	switch out {
	case core.Accepted:
		// counted once committed
	case core.Filtered:
		ic.filtered++
		ic.dropped[t].filtered++
	case core.Rejected:
		ic.rejected++
		ic.dropped[t].rejected++
		if len(ic.errs) < maxReportedErrors {
			ic.errs = append(ic.errs, eventError{index: i, reason: reason})
		}
	}
}

// countEvents records accepted events and strips once the batch is durable.
func (s *ingestAPI) countEvents(ic *ingestCtx) {
	for i := range ic.batch.Events {
		s.m.events[ic.batch.Events[i].Type][core.Accepted].Inc()
	}
	for st, n := range ic.stripped {
		if n > 0 {
			s.m.stripped[st].Add(n)
		}
	}
	if ic.batch.Quarantined > 0 {
		s.m.quarantine.Add(ic.batch.Quarantined)
	}
}

func (s *ingestAPI) writeIngestResponse(ctx *fasthttp.RequestCtx, ic *ingestCtx) {
	ctx.SetContentType("application/json")
	b := ctx.Response.Body()[:0]
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(ic.accepted), 10)
	b = append(b, `,"rejected":`...)
	b = strconv.AppendInt(b, int64(ic.rejected), 10)
	b = append(b, `,"filtered":`...)
	b = strconv.AppendInt(b, int64(ic.filtered), 10)
	b = append(b, `,"quarantined":`...)
	b = strconv.AppendInt(b, int64(ic.batch.Quarantined), 10)
	if len(ic.errs) > 0 {
		b = append(b, `,"errors":[`...)
		for i, e := range ic.errs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(e.index), 10)
			b = append(b, `,"reason":`...)
			if e.reason.Field != "" {
				b = core.AppendQuoted(b, e.reason.Field+": "+e.reason.Msg)
			} else {
				b = core.AppendQuoted(b, e.reason.Msg)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	ctx.Response.SetBodyRaw(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ingestPoolSize bounds the idle ingest contexts kept warm: enough for the
// requests a node decodes at once; each holds up to about a body's worth
// of buffers.
const ingestPoolSize = 32

// maxAdmissionWait is how long an ingest request waits for a slot before
// it is answered 503: a node that cannot decode what arrives within this
// long is overloaded, and the SDK's retry is better than a growing queue.
const maxAdmissionWait = 10 * time.Second

// release gives back ic's ingest slot, if it holds one.
func (s *ingestAPI) release(ic *ingestCtx) {
	if ic.slotted {
		ic.slotted = false
		s.adm.release(ic.pnum)
	}
}

func (s *ingestAPI) getCtx() *ingestCtx {
	select {
	case ic := <-s.pool:
		return ic
	default:
		ic := new(ingestCtx)
		ic.proc.SetCapture(s.capture)
		return ic
	}
}

func (s *ingestAPI) putCtx(ic *ingestCtx) {
	ic.reset()
	select {
	case s.pool <- ic:
	default: // enough are idle: let this one go
	}
}
