package edge

import "github.com/valyala/fasthttp"

// SceneStore keeps scene representations per project.
type SceneStore interface{}

// sceneRepresentation is PUT/GET /api/v1/scenes/:sceneId/representation.
func (s *Server) sceneRepresentation(ctx *fasthttp.RequestCtx, sceneID []byte) { s.notImplemented(ctx) }

// sceneRepresentations is GET /api/v1/scene-representations.
func (s *Server) sceneRepresentations(ctx *fasthttp.RequestCtx) { s.notImplemented(ctx) }
