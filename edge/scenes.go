package edge

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// SceneStore keeps one representation document per scene per project, with a
// listing summary of it. It stores both as given (the edge validates and
// encodes them); the storage package's Scenes implements it.
type SceneStore interface {
	// Put stores doc and its summary for the scene, replacing any earlier
	// one; created reports whether there was none. An error wrapping
	// core.ErrUnavailable means the store cannot take writes now.
	Put(projectNum uint32, sceneID string, summary, doc []byte) (created bool, err error)
	// Get returns the scene's document; ok is false when there is none.
	Get(projectNum uint32, sceneID string) (doc []byte, ok bool, err error)
	// List returns the project's summaries in scene-id order, starting after
	// the scene id after ("" = from the first), at most limit of them.
	List(projectNum uint32, after string, limit int) ([][]byte, error)
}

// Scene registry bounds (docs/API.md, "Scene registry").
const (
	// SceneBodyLimit is the decompressed-size cap of a representation PUT
	// when COLLECTOR_BODY_LIMIT is lower: a 10,000-mesh proxy is 1–3 MB.
	SceneBodyLimit = 8 << 20

	maxSceneMeshes      = 10000
	maxSceneIDLen       = 64
	maxMeshNameLen      = 256
	maxMeshPathLen      = 1024
	maxContentHashLen   = 128
	maxSceneSDKVerLen   = 64
	maxSceneInt         = 1 << 53
	sceneListDefault    = 100
	sceneListMax        = 1000
	sceneWritesInFlight = 4
)

var (
	// sceneDecompressor decodes representation bodies under SceneBodyLimit;
	// servers whose body limit is higher use their own decompressor.
	sceneDecompressor = NewDecompressor(SceneBodyLimit)
	// sceneWriteSlots bounds the representation PUTs decoded at once, so a
	// burst of large proxies cannot take more than a few bodies' worth of
	// memory.
	sceneWriteSlots = make(chan struct{}, sceneWritesInFlight)
)

// sceneDec returns the decompressor for representation bodies: the larger of
// SceneBodyLimit and COLLECTOR_BODY_LIMIT caps them.
func (s *ingestAPI) sceneDec() *Decompressor {
	if s.dec.Limit() >= SceneBodyLimit {
		return s.dec
	}
	return sceneDecompressor
}

// sceneRepresentation is GET (and HEAD) /api/v1/scenes/:sceneId/representation;
// the Server routes a PUT to putSceneRepresentation.
func (s *readAPI) sceneRepresentation(ctx *fasthttp.RequestCtx, sceneID []byte) {
	if s.scenes == nil {
		s.notImplemented(ctx)
		return
	}
	var h [32]byte
	switch {
	case ctx.IsGet(), ctx.IsHead():
		p, ok := s.authenticate(ctx, core.CapQuery|core.CapAdmin, nil, false, &h)
		if !ok {
			return
		}
		if !validSceneID(sceneID) {
			s.fail(ctx, fasthttp.StatusBadRequest, "invalid scene id in the path: use 1–64 characters of A-Z a-z 0-9 . _ : -")
			return
		}
		doc, found, err := s.scenes.Get(p.ProjectNum(), string(sceneID))
		if err != nil {
			s.sceneStoreFailed(ctx, p, "read", err)
			return
		}
		if !found {
			s.fail(ctx, fasthttp.StatusNotFound, "no representation stored for scene "+string(sceneID))
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBody(doc)
	default:
		ctx.Response.Header.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: GET or PUT a scene representation")
	}
}

// putSceneRepresentation is PUT /api/v1/scenes/:sceneId/representation.
func (s *ingestAPI) putSceneRepresentation(ctx *fasthttp.RequestCtx, sceneID []byte) {
	if s.scenes == nil {
		s.notImplemented(ctx)
		return
	}
	var h [32]byte
	p, ok := s.authenticate(ctx, core.CapQuery|core.CapAdmin, nil, false, &h)
	if !ok {
		return
	}
	if !validSceneID(sceneID) {
		s.fail(ctx, fasthttp.StatusBadRequest, "invalid scene id in the path: use 1–64 characters of A-Z a-z 0-9 . _ : -")
		return
	}
	enc, ok := ParseEncoding(ctx.Request.Header.Peek(fasthttp.HeaderContentEncoding))
	if !ok {
		s.fail(ctx, fasthttp.StatusUnsupportedMediaType, unsupportedEncodingMsg(ctx.Request.Header.Peek(fasthttp.HeaderContentEncoding)))
		return
	}
	if f, ok := parseContentType(ctx.Request.Header.ContentType()); !ok || f != formatJSON {
		s.fail(ctx, fasthttp.StatusUnsupportedMediaType, "unsupported Content-Type: use application/json")
		return
	}
	if err := s.ready(); err != nil {
		s.unavailable(ctx, "storage cannot take writes: "+errText(err), 30)
		return
	}
	wire := ctx.Request.Body()
	if len(wire) == 0 {
		s.fail(ctx, fasthttp.StatusBadRequest, "empty body: send the scene representation as a JSON object")
		return
	}

	sceneWriteSlots <- struct{}{}
	defer func() { <-sceneWriteSlots }()

	dec := s.sceneDec()
	data, err := dec.Decompress(nil, wire, enc)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			s.fail(ctx, fasthttp.StatusRequestEntityTooLarge,
				"decompressed body exceeds "+strconv.Itoa(dec.Limit())+" bytes, the scene representation limit")
			return
		}
		s.fail(ctx, fasthttp.StatusBadRequest, "cannot decode "+enc.String()+" body: "+StreamErrorReason(err))
		return
	}
	var parser jsonvalue.Parser
	v, err := parser.ParseBytes(data)
	if err != nil {
		msg := "malformed JSON body: send the scene representation as a JSON object"
		var ee *jsonvalue.EscapeError
		if errors.As(err, &ee) {
			msg = "malformed JSON body: invalid escape " + strconv.Quote(ee.Seq) + " in a string at offset " + strconv.Itoa(ee.Offset)
		}
		s.fail(ctx, fasthttp.StatusBadRequest, msg)
		return
	}
	var rep sceneRep
	doc, msg := rep.encode(v, sceneID, make([]byte, 0, len(data)/2+256))
	if msg != "" {
		s.fail(ctx, fasthttp.StatusBadRequest, msg)
		return
	}
	summary := rep.appendSummary(nil, s.now())
	created, err := s.scenes.Put(p.ProjectNum(), string(sceneID), summary, doc)
	if err != nil {
		s.sceneStoreFailed(ctx, p, "write", err)
		return
	}
	ctx.SetContentType("application/json")
	if created {
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.Response.Header.Set("Location", "/api/v1/scenes/"+string(sceneID)+"/representation")
	}
	ctx.SetBody(summary)
}

func (s *base) sceneStoreFailed(ctx *fasthttp.RequestCtx, p core.Project, op string, err error) {
	if !errors.Is(err, core.ErrUnavailable) {
		s.log.Error("scene store "+op+" failed", "project", p.ProjectID(), "err", err)
	}
	s.unavailable(ctx, "storage cannot "+op+" scene representations now: "+errText(err), 5)
}

// sceneRepresentations is GET /api/v1/scene-representations.
func (s *readAPI) sceneRepresentations(ctx *fasthttp.RequestCtx) {
	if s.scenes == nil {
		s.notImplemented(ctx)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD, OPTIONS")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed: use GET")
		return
	}
	var h [32]byte
	p, ok := s.authenticate(ctx, core.CapQuery|core.CapAdmin, nil, false, &h)
	if !ok {
		return
	}
	args := ctx.QueryArgs()
	limit := sceneListDefault
	if args.Has("limit") {
		n, err := strconv.Atoi(string(args.Peek("limit")))
		if err != nil || n < 1 || n > sceneListMax {
			s.fail(ctx, fasthttp.StatusBadRequest, "limit: want an integer 1–1000")
			return
		}
		limit = n
	}
	var after string
	if args.Has("after") {
		a := args.Peek("after")
		if !validSceneID(a) {
			s.fail(ctx, fasthttp.StatusBadRequest, "after: want a scene id (1–64 characters of A-Z a-z 0-9 . _ : -)")
			return
		}
		after = string(a)
	}
	rows, err := s.scenes.List(p.ProjectNum(), after, limit)
	if err != nil {
		s.sceneStoreFailed(ctx, p, "read", err)
		return
	}
	n := 2
	for _, r := range rows {
		n += len(r) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, r := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	b = append(b, ']')
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// validSceneID reports whether id is 1–64 characters of A-Z a-z 0-9 . _ : -,
// the alphabet of event sceneIds.
func validSceneID(id []byte) bool {
	if len(id) == 0 || len(id) > maxSceneIDLen {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// sceneRep holds what the summary of a validated representation needs.
type sceneRep struct {
	sceneID     []byte
	meshCount   int64
	contentHash []byte
	capturedAt  int64
	sdkVersion  []byte
}

// encode validates a representation against the path's scene id and appends
// its canonical encoding to dst. On failure msg says which field is wrong and
// how ("meshes[3].aabb: …").
func (r *sceneRep) encode(v *fastjson.Value, pathID []byte, dst []byte) (out []byte, msg string) {
	obj, err := v.Object()
	if err != nil {
		return nil, "body must be a JSON object: {\"version\":1,\"kind\":\"aabb\",\"sceneId\":…}"
	}
	var f struct {
		version, kind, sceneID, bounds, upAxis, unitScale, meshes,
		meshCount, contentHash, capturedAt, sdkVersion *fastjson.Value
	}
	var dup string
	obj.Visit(func(k []byte, x *fastjson.Value) {
		var slot **fastjson.Value
		switch string(k) {
		case "version":
			slot = &f.version
		case "kind":
			slot = &f.kind
		case "sceneId":
			slot = &f.sceneID
		case "bounds":
			slot = &f.bounds
		case "upAxis":
			slot = &f.upAxis
		case "unitScale":
			slot = &f.unitScale
		case "meshes":
			slot = &f.meshes
		case "meshCount":
			slot = &f.meshCount
		case "contentHash":
			slot = &f.contentHash
		case "capturedAt":
			slot = &f.capturedAt
		case "sdkVersion":
			slot = &f.sdkVersion
		default:
			return // unknown members are dropped
		}
		if *slot != nil && dup == "" {
			dup = string(k) + ": duplicate field"
		}
		*slot = x
	})
	if dup != "" {
		return nil, dup
	}

	b := append(dst, `{"version":`...)
	if n, m := sceneInt("version", f.version); m != "" {
		return nil, m
	} else if n != 1 {
		return nil, "version: unsupported version " + strconv.FormatInt(n, 10) + ": want 1"
	}
	b = append(b, '1')

	kind, m := sceneString("kind", f.kind, 1, 16)
	if m != "" {
		return nil, m
	}
	if string(kind) != "aabb" {
		return nil, "kind: unsupported kind " + strconv.Quote(string(kind)) + ": want \"aabb\""
	}
	b = append(b, `,"kind":"aabb"`...)

	id, m := sceneString("sceneId", f.sceneID, 1, maxSceneIDLen)
	if m != "" {
		return nil, m
	}
	if !validSceneID(id) {
		return nil, "sceneId: use 1–64 characters of A-Z a-z 0-9 . _ : -"
	}
	if string(id) != string(pathID) {
		return nil, "sceneId: " + strconv.Quote(string(id)) + " does not match the scene id in the path " + strconv.Quote(string(pathID))
	}
	r.sceneID = id
	b = append(b, `,"sceneId":`...)
	b = appendJSONString(b, string(id))

	b = append(b, `,"bounds":`...)
	if b, m = appendAABB(b, "bounds", f.bounds); m != "" {
		return nil, m
	}

	const axes = "one of x, y, z, +x, +y, +z, -x, -y, -z"
	axis, m := sceneString("upAxis", f.upAxis, 1, 2)
	if m != "" {
		if f.upAxis == nil || f.upAxis.Type() == fastjson.TypeNull {
			return nil, "upAxis: required (" + axes + ")"
		}
		return nil, "upAxis: want " + axes
	}
	sign := byte('+')
	if len(axis) == 2 {
		sign, axis = axis[0], axis[1:]
	}
	if sign != '+' && sign != '-' || axis[0] != 'x' && axis[0] != 'y' && axis[0] != 'z' {
		return nil, "upAxis: want " + axes
	}
	b = append(b, `,"upAxis":"`...)
	b = append(b, sign, axis[0], '"')

	if f.unitScale == nil || f.unitScale.Type() == fastjson.TypeNull {
		return nil, "unitScale: required"
	}
	us, ok := sceneNumber(f.unitScale)
	if !ok || us <= 0 {
		return nil, "unitScale: want a finite number > 0"
	}
	b = append(b, `,"unitScale":`...)
	b = appendCanonicalFloat(b, us)

	// meshCount is checked against the list below, once its length is known.
	if r.meshCount, m = sceneInt("meshCount", f.meshCount); m != "" {
		return nil, m
	}
	b = append(b, `,"meshCount":`...)
	b = strconv.AppendInt(b, r.meshCount, 10)

	if r.contentHash, m = sceneString("contentHash", f.contentHash, 1, maxContentHashLen); m != "" {
		return nil, m
	}
	b = append(b, `,"contentHash":`...)
	b = appendJSONString(b, string(r.contentHash))

	if r.capturedAt, m = sceneInt("capturedAt", f.capturedAt); m != "" {
		return nil, m + " (epoch milliseconds)"
	}
	b = append(b, `,"capturedAt":`...)
	b = strconv.AppendInt(b, r.capturedAt, 10)

	if r.sdkVersion, m = sceneString("sdkVersion", f.sdkVersion, 1, maxSceneSDKVerLen); m != "" {
		return nil, m
	}
	b = append(b, `,"sdkVersion":`...)
	b = appendJSONString(b, string(r.sdkVersion))

	if f.meshes == nil || f.meshes.Type() == fastjson.TypeNull {
		return nil, "meshes: required (an array, possibly empty)"
	}
	meshes, err := f.meshes.Array()
	if err != nil {
		return nil, "meshes: want an array of {name, aabb, triangles?, path?}"
	}
	if len(meshes) > maxSceneMeshes {
		return nil, "meshes: " + strconv.Itoa(len(meshes)) + " meshes, at most 10000 allowed"
	}
	if r.meshCount < int64(len(meshes)) {
		return nil, "meshCount: " + strconv.FormatInt(r.meshCount, 10) + " is less than the " + strconv.Itoa(len(meshes)) + " meshes listed"
	}
	b = append(b, `,"meshes":[`...)
	for i, mv := range meshes {
		if i > 0 {
			b = append(b, ',')
		}
		if b, m = appendMesh(b, i, mv); m != "" {
			return nil, m
		}
	}
	b = append(b, "]}"...)
	return b, ""
}

// appendMesh validates one entry of meshes and appends its canonical form.
func appendMesh(b []byte, i int, v *fastjson.Value) ([]byte, string) {
	at := "meshes[" + strconv.Itoa(i) + "]"
	obj, err := v.Object()
	if err != nil {
		return b, at + ": want an object {name, aabb, triangles?, path?}"
	}
	var name, aabb, tris, path *fastjson.Value
	var dup string
	obj.Visit(func(k []byte, x *fastjson.Value) {
		var slot **fastjson.Value
		switch string(k) {
		case "name":
			slot = &name
		case "aabb":
			slot = &aabb
		case "triangles":
			slot = &tris
		case "path":
			slot = &path
		default:
			return
		}
		if *slot != nil && dup == "" {
			dup = at + "." + string(k) + ": duplicate field"
		}
		*slot = x
	})
	if dup != "" {
		return b, dup
	}
	s, m := sceneString(at+".name", name, 1, maxMeshNameLen)
	if m != "" {
		return b, m
	}
	b = append(b, `{"name":`...)
	b = appendJSONString(b, string(s))
	b = append(b, `,"aabb":`...)
	if b, m = appendAABB(b, at+".aabb", aabb); m != "" {
		return b, m
	}
	if tris != nil && tris.Type() != fastjson.TypeNull {
		n, m := sceneInt(at+".triangles", tris)
		if m != "" {
			return b, m
		}
		b = append(b, `,"triangles":`...)
		b = strconv.AppendInt(b, n, 10)
	}
	if path != nil && path.Type() != fastjson.TypeNull {
		s, m := sceneString(at+".path", path, 0, maxMeshPathLen)
		if m != "" {
			return b, m
		}
		b = append(b, `,"path":`...)
		b = appendJSONString(b, string(s))
	}
	return append(b, '}'), ""
}

// appendAABB validates [minX,minY,minZ,maxX,maxY,maxZ] and appends it.
func appendAABB(b []byte, at string, v *fastjson.Value) ([]byte, string) {
	const want = ": want [minX,minY,minZ,maxX,maxY,maxZ] of finite numbers with min ≤ max"
	if v == nil || v.Type() == fastjson.TypeNull {
		return b, at + ": required" + want[1:]
	}
	a, err := v.Array()
	if err != nil || len(a) != 6 {
		return b, at + want
	}
	var x [6]float64
	for i, e := range a {
		f, ok := sceneNumber(e)
		if !ok {
			return b, at + "[" + strconv.Itoa(i) + "]: want a finite number"
		}
		x[i] = f
	}
	for i := range 3 {
		if x[i] > x[i+3] {
			axis := "XYZ"[i : i+1]
			return b, at + ": min" + axis + " " + strconv.FormatFloat(x[i], 'g', -1, 64) +
				" > max" + axis + " " + strconv.FormatFloat(x[i+3], 'g', -1, 64) + ": want min ≤ max on each axis"
		}
	}
	b = append(b, '[')
	for i, f := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendCanonicalFloat(b, f)
	}
	return append(b, ']'), ""
}

// sceneString returns a required string member whose length in UTF-16 code
// units (as the JavaScript SDKs count) is within [lo, hi].
func sceneString(at string, v *fastjson.Value, lo, hi int) ([]byte, string) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, at + ": required"
	}
	s, err := v.StringBytes()
	if err != nil {
		return nil, at + ": want a string"
	}
	n, ok := jsLength(s)
	switch {
	case !ok:
		return nil, at + ": " + core.InvalidText(s)
	case n < lo || n > hi:
		if lo == 0 {
			return nil, at + ": at most " + strconv.Itoa(hi) + " characters"
		}
		return nil, at + ": want " + strconv.Itoa(lo) + "–" + strconv.Itoa(hi) + " characters"
	}
	return s, ""
}

// sceneInt returns a required integer member in [0, 2^53]. 1e3 and 1.0 are
// integers; 1.5 is not.
func sceneInt(at string, v *fastjson.Value) (int64, string) {
	if v == nil || v.Type() == fastjson.TypeNull {
		return 0, at + ": required"
	}
	f, ok := sceneNumber(v)
	if !ok || f < 0 || f > maxSceneInt || f != math.Trunc(f) {
		return 0, at + ": want an integer 0 to 2^53"
	}
	return int64(f), ""
}

// sceneNumber returns a JSON number's value. The token must follow the JSON
// grammar exactly (fastjson also takes NaN, Inf, 01, .5, 1. and +1) and be
// finite as a float64 (1e999 is not).
func sceneNumber(v *fastjson.Value) (float64, bool) {
	if v.Type() != fastjson.TypeNumber {
		return 0, false
	}
	var buf [32]byte
	tok := v.MarshalTo(buf[:0])
	if !strictJSONNumber(tok) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// strictJSONNumber reports whether tok is -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func strictJSONNumber(tok []byte) bool {
	i, n := 0, len(tok)
	if i < n && tok[i] == '-' {
		i++
	}
	switch {
	case i < n && tok[i] == '0':
		i++
	case i < n && tok[i] >= '1' && tok[i] <= '9':
		for i < n && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < n && tok[i] == '.' {
		i++
		j := i
		for i < n && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	if i < n && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < n && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		j := i
		for i < n && tok[i] >= '0' && tok[i] <= '9' {
			i++
		}
		if i == j {
			return false
		}
	}
	return i == n
}

// appendCanonicalFloat appends f in its shortest round-trip form, as
// JavaScript prints numbers: plain decimals from 1e-6 to below 1e21, exponent
// form outside; -0 is written 0.
func appendCanonicalFloat(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, 1e+21 → 1e+21 (two-digit exponents lose their 0).
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// jsLength returns the length of s in UTF-16 code units and whether s is
// valid UTF-8.
func jsLength(s []byte) (int, bool) {
	if !utf8.Valid(s) {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c&0xC0 != 0x80 {
			n++
		}
		if c >= 0xF0 {
			n++
		}
	}
	return n, true
}

// appendSummary appends the listing row of a validated representation.
func (r *sceneRep) appendSummary(b []byte, now time.Time) []byte {
	b = append(b, `{"scene_id":`...)
	b = appendJSONString(b, string(r.sceneID))
	b = append(b, `,"version":1,"kind":"aabb","meshCount":`...)
	b = strconv.AppendInt(b, r.meshCount, 10)
	b = append(b, `,"contentHash":`...)
	b = appendJSONString(b, string(r.contentHash))
	b = append(b, `,"capturedAt":`...)
	b = strconv.AppendInt(b, r.capturedAt, 10)
	b = append(b, `,"sdkVersion":`...)
	b = appendJSONString(b, string(r.sdkVersion))
	b = append(b, `,"updated_at":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `"}`...)
}
