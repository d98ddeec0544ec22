package edge

import (
	"errors"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// SceneStore keeps one representation document per scene per project, with a
// listing summary of it. It stores both as given (core.AppendScene validates
// and encodes them); the storage package's Scenes implements it.
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

// Scene registry bounds of the HTTP side (docs/API.md, "Scene registry");
// core bounds the document itself (core.AppendScene).
const (
	// SceneBodyLimit is the decompressed-size cap of a representation PUT
	// when COLLECTOR_BODY_LIMIT is lower: a 10,000-mesh proxy is 1–3 MB.
	SceneBodyLimit = 8 << 20

	sceneListDefault    = 100
	sceneListMax        = 1000
	sceneWritesInFlight = 4 // representation PUTs a server decodes at once
)

// newSceneDecompressor returns the decompressor for representation bodies of
// a server whose ingest decompressor is dec: the larger of SceneBodyLimit and
// COLLECTOR_BODY_LIMIT caps them.
func newSceneDecompressor(dec *Decompressor) *Decompressor {
	if dec.Limit() >= SceneBodyLimit {
		return dec
	}
	return NewDecompressor(SceneBodyLimit)
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
		if !core.ValidSceneID(sceneID) {
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
	if !core.ValidSceneID(sceneID) {
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

	s.sceneSlots <- struct{}{}
	defer func() { <-s.sceneSlots }()

	dec := s.sceneDec
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
	doc, scene, err := core.AppendScene(make([]byte, 0, len(data)/2+256), jsonvalue.Wrap(v), sceneID)
	if err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, err.Error())
		return
	}
	summary := scene.AppendSummary(nil, s.now())
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
		if !core.ValidSceneID(a) {
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
