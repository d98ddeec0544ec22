package gen

import (
	"math"

	"github.com/uptimizr/edge/core"
)

// One writer per event type. Each appends a whole event object at s.ts with
// the payload fields of the event catalog (core/schema.go), optional ones at the rates seen in real
// batches.

func (g *Generator) sessionStart(dst []byte, s *session) []byte {
	r := &g.r
	d, sc, st := s.dev, s.sceneInfo(), s.site
	dst = g.head(dst, s, core.TypeSessionStart)
	dst = append(dst, `,"url":`...)
	dst = g.url(dst, s)
	dst = append(dst, `,"pageMeta":`...)
	dst = g.pageMeta(dst, s)

	dst = append(dst, `,"device":{"engine":`...)
	dst = quote(dst, d.engine)
	dst = append(dst, `,"vendor":`...)
	dst = quote(dst, d.vendor)
	dst = append(dst, `,"renderer":`...)
	dst = quote(dst, d.renderer)
	dst = append(dst, `,"maxTextureSize":`...)
	dst = integer(dst, d.maxTexture)
	dst = append(dst, `,"hardwareConcurrency":`...)
	dst = integer(dst, d.cores)
	dst = append(dst, `,"deviceMemoryGb":`...)
	dst = integer(dst, d.memGb)
	dst = append(dst, `,"isMobile":`...)
	dst = boolean(dst, d.mobile)

	dst = append(dst, `},"graphics":{"api":`...)
	dst = quote(dst, d.api)
	dst = append(dst, `,"backend":`...)
	dst = quote(dst, d.backend)
	dst = append(dst, `,"apiVersion":`...)
	dst = quote(dst, d.apiVersion)
	dst = append(dst, `,"shadingLanguage":`...)
	dst = quote(dst, d.shading)

	dst = append(dst, `},"scene":{"description":`...)
	dst = quote(dst, sc.description)
	dst = append(dst, `,"cameraType":`...)
	dst = quote(dst, st.cameraType)
	dst = append(dst, `,"cameraName":`...)
	dst = quote(dst, st.cameraName)
	dst = append(dst, `,"meshCount":`...)
	dst = integer(dst, sc.meshCount*r.between(75, 135)/100)
	dst = append(dst, '}')

	if s.user {
		dst = append(dst, `,"user":{"id":`...)
		if g.pii() {
			// An integration that passes the visitor's e-mail as the user id.
			g.tmp = g.appendPII(g.tmp[:0], piiEmail)
			dst = quote(dst, g.tmp)
		} else {
			dst = append(dst, '"')
			dst = hexID(dst, r)
			dst = append(dst, '"')
		}
		if r.chance(0.7) {
			dst = append(dst, `,"traits":{"plan":`...)
			dst = quote(dst, pick(r, plans))
			dst = append(dst, `,"returning":`...)
			dst = boolean(dst, r.chance(0.4))
			dst = append(dst, `,"visits":`...)
			dst = integer(dst, r.between(1, 40))
			if r.chance(0.3) {
				dst = append(dst, `,"abVariant":"B","consent":null`...)
			}
			if g.pii() {
				dst = append(dst, `,"contact":`...)
				g.tmp = g.piiText(g.tmp[:0])
				dst = quote(dst, g.tmp)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, '}')
	}

	dst = append(dst, `,"connector":{"name":`...)
	dst = quote(dst, st.connector)
	dst = append(dst, `,"version":`...)
	dst = quote(dst, st.version)
	dst = append(dst, `,"coordinateSystem":{"handedness":`...)
	dst = quote(dst, st.handedness)
	dst = append(dst, `,"upAxis":`...)
	dst = quote(dst, st.upAxis)
	dst = append(dst, `,"unitScale":`...)
	dst = fixed(dst, st.unitScale)
	return append(dst, "}}}"...)
}

// url appends the page URL of the session's scene; a PII-carrying one has it
// in the query string.
func (g *Generator) url(dst []byte, s *session) []byte {
	b := append(g.tmp[:0], s.site.origin...)
	b = append(b, s.sceneInfo().path...)
	if g.pii() {
		b = g.piiQuery(b)
	} else if g.r.chance(0.2) {
		b = append(b, pick(&g.r, utm)...)
	}
	g.tmp = b
	return quote(dst, b)
}

func (g *Generator) pageMeta(dst []byte, s *session) []byte {
	dst = append(dst, `{"title":`...)
	if g.pii() {
		b := append(g.tmp[:0], s.site.title...)
		b = append(b, " – "...)
		b = g.piiText(b)
		g.tmp = b
		dst = quote(dst, b)
	} else {
		dst = quote(dst, s.site.title)
	}
	if g.r.chance(0.35) {
		dst = append(dst, `,"referrer":`...)
		dst = quote(dst, pick(&g.r, referrers))
	}
	dst = append(dst, `,"viewport":[`...)
	dst = integer(dst, s.vw)
	dst = append(dst, ',')
	dst = integer(dst, s.vh)
	dst = append(dst, `],"devicePixelRatio":`...)
	dst = fixed(dst, s.dev.dpr)
	dst = append(dst, `,"language":`...)
	dst = quote(dst, s.lang)
	return append(dst, '}')
}

func (g *Generator) sessionEnd(dst []byte, s *session) []byte {
	dst = g.head(dst, s, core.TypeSessionEnd)
	dst = append(dst, `,"durationMs":`...)
	dst = integer(dst, int(s.ts-s.started))
	dst = append(dst, `,"reason":`...)
	dst = quote(dst, s.end)
	return append(dst, '}')
}

func (g *Generator) framePerf(dst []byte, s *session) []byte {
	r := &g.r
	fps := math.Max(1, s.fps*(1+0.06*r.gauss()))
	ft := 1000 / fps
	p95 := ft * r.uniform(1.1, 1.5)
	long := 0
	if r.chance(50 / fps) {
		long = r.between(1, 5)
	}
	dst = g.head(dst, s, core.TypeFramePerf)
	dst = append(dst, `,"fps":`...)
	dst = fixed(dst, fps)
	dst = append(dst, `,"frameTimeMs":`...)
	dst = fixed(dst, ft)
	dst = append(dst, `,"frameTimeP95Ms":`...)
	dst = fixed(dst, p95)
	dst = append(dst, `,"frameTimeP99Ms":`...)
	dst = fixed(dst, p95*r.uniform(1.05, 1.6))
	dst = append(dst, `,"longFrames":`...)
	dst = integer(dst, long)
	dst = append(dst, `,"drawCalls":`...)
	dst = integer(dst, r.between(80, 400))
	dst = append(dst, `,"dpr":`...)
	dst = fixed(dst, s.dev.dpr)
	dst = append(dst, `,"renderScale":`...)
	dst = fixed(dst, s.scale)
	return append(dst, '}')
}

func (g *Generator) cameraSample(dst []byte, s *session) []byte {
	r := &g.r
	c := &s.cam
	dst = g.head(dst, s, core.TypeCameraSample)
	dst = append(dst, `,"position":`...)
	dst = vec3(dst, c.position())
	dst = append(dst, `,"direction":`...)
	dst = vec3(dst, c.direction())
	if r.chance(0.3) {
		dst = append(dst, `,"target":`...)
		dst = vec3(dst, c.target)
	}
	dst = append(dst, `,"fov":`...)
	dst = fixed(dst, c.fov)
	dst = append(dst, `,"aspect":`...)
	dst = fixed(dst, math.Max(0.001, c.aspect))
	dst = append(dst, `,"near":0.1`...)
	if r.chance(0.45) { // gaze
		dst = g.hit(dst, s)
	}
	return append(dst, '}')
}

// hit appends hitPoint and hitMesh.
func (g *Generator) hit(dst []byte, s *session) []byte {
	dst = append(dst, `,"hitPoint":`...)
	dst = vec3(dst, s.cam.hit(&g.r))
	dst = append(dst, `,"hitMesh":`...)
	return quote(dst, pick(&g.r, s.sceneInfo().meshes))
}

func (g *Generator) screen(dst []byte, s *session) []byte {
	dst = append(dst, `,"screen":`...)
	return vec(dst, s.px, s.py)
}

// src appends the input-source fields of the session's input device.
func (g *Generator) src(dst []byte, s *session) []byte {
	r := &g.r
	dst = append(dst, `,"source":`...)
	dst = quote(dst, s.input)
	switch s.input {
	case "xr-controller", "hand":
		hand := "right"
		if r.chance(0.3) {
			hand = "left"
		}
		dst = append(dst, `,"handedness":`...)
		dst = quote(dst, hand)
		if r.chance(0.5) {
			dst = append(dst, `,"sourceId":"xr-`...)
			dst = append(dst, hand...)
			dst = append(dst, `-0"`...)
		}
		// The controller's pointing ray.
		p := s.cam.position()
		d := s.cam.direction()
		dst = append(dst, `,"ray":{"origin":`...)
		dst = vec(dst, p[0]+0.2, p[1]-0.35, p[2])
		dst = append(dst, `,"direction":`...)
		dst = vec(dst, d[0]+0.05*r.gauss(), d[1]+0.05*r.gauss(), d[2]+0.05*r.gauss())
		dst = append(dst, '}')
	case "touch":
		if r.chance(0.1) {
			dst = append(dst, `,"sourceId":"touch-1"`...)
		}
	default:
		if r.chance(0.05) {
			dst = append(dst, `,"sourceId":"pointer-1"`...)
		}
	}
	return dst
}

func (g *Generator) pointerMove(dst []byte, s *session) []byte {
	dst = g.head(dst, s, core.TypePointerMove)
	dst = g.screen(dst, s)
	if g.r.chance(0.5) {
		dst = g.hit(dst, s)
	}
	dst = g.src(dst, s)
	return append(dst, '}')
}

// pointerButton writes pointer_click, pointer_down or pointer_up.
func (g *Generator) pointerButton(dst []byte, s *session, t core.EventType) []byte {
	r := &g.r
	dst = g.head(dst, s, t)
	dst = g.screen(dst, s)
	if r.chance(0.6) {
		dst = g.hit(dst, s)
	}
	button := 0
	if s.input == "mouse" {
		if x := r.intn(20); x == 0 {
			button = 1
		} else if x < 3 {
			button = 2
		}
	}
	dst = append(dst, `,"button":`...)
	dst = integer(dst, button)
	dst = g.src(dst, s)
	return append(dst, '}')
}

func (g *Generator) cameraGesture(dst []byte, s *session) []byte {
	r := &g.r
	kind := pick(r, gestureKinds)
	dst = g.head(dst, s, core.TypeCameraGesture)
	dst = append(dst, `,"kind":`...)
	dst = quote(dst, kind)
	dst = append(dst, `,"durationMs":`...)
	dst = integer(dst, r.between(120, 4000))
	switch kind {
	case "orbit":
		dst = append(dst, `,"orbitDeg":`...)
		dst = fixed(dst, r.uniform(3, 200))
	case "roll":
		dst = append(dst, `,"rollDeg":`...)
		dst = fixed(dst, r.uniform(2, 90))
	case "zoom", "dolly":
		dst = append(dst, `,"zoomRatio":`...)
		dst = fixed(dst, r.uniform(0.5, 2.2))
	default: // pan, fly, navigate
		dst = append(dst, `,"panDist":`...)
		dst = fixed(dst, r.uniform(0.1, 6))
	}
	dst = g.src(dst, s)
	return append(dst, '}')
}

func (g *Generator) meshInteraction(dst []byte, s *session) []byte {
	r := &g.r
	dst = g.head(dst, s, core.TypeMeshInteraction)
	dst = append(dst, `,"mesh":`...)
	dst = quote(dst, pick(r, s.sceneInfo().meshes))
	dst = append(dst, `,"kind":`...)
	dst = quote(dst, pick(r, meshKinds))
	dst = append(dst, `,"point":`...)
	dst = vec3(dst, s.cam.hit(r))
	dst = g.src(dst, s)
	return append(dst, '}')
}

func (g *Generator) meshVisibility(dst []byte, s *session) []byte {
	r := &g.r
	visible := r.between(150, 8000)
	dst = g.head(dst, s, core.TypeMeshVisibility)
	dst = append(dst, `,"mesh":`...)
	dst = quote(dst, pick(r, s.sceneInfo().meshes))
	dst = append(dst, `,"visibleMs":`...)
	dst = integer(dst, visible)
	dst = append(dst, `,"centeredMs":`...)
	dst = integer(dst, int(float64(visible)*r.uniform(0, 0.8)))
	dst = append(dst, `,"maxScreenFraction":`...)
	dst = fixed(dst, r.uniform(0.01, 0.6))
	if r.chance(0.16) {
		c := s.cam.hit(r)
		h := r.uniform(0.15, 1.5)
		dst = append(dst, `,"bounds":`...)
		dst = vec(dst, c[0]-h, c[1]-h, c[2]-h, c[0]+h, c[1]+h, c[2]+h)
	}
	return append(dst, '}')
}

func (g *Generator) hoverDwell(dst []byte, s *session) []byte {
	r := &g.r
	dst = g.head(dst, s, core.TypeHoverDwell)
	dst = append(dst, `,"mesh":`...)
	dst = quote(dst, pick(r, s.sceneInfo().meshes))
	dst = append(dst, `,"dwellMs":`...)
	dst = integer(dst, r.between(600, 4500))
	dst = g.src(dst, s)
	return append(dst, '}')
}

func (g *Generator) custom(dst []byte, s *session) []byte {
	r := &g.r
	dst = g.head(dst, s, core.TypeCustom)
	dst = append(dst, `,"name":`...)
	dst = quote(dst, pick(r, s.site.customNames))
	dst = append(dst, `,"props":{`...)
	switch s.site.custom {
	case customShop:
		dst = append(dst, `"color":`...)
		dst = quote(dst, pick(r, colors))
		dst = append(dst, `,"inCart":`...)
		dst = boolean(dst, r.chance(0.4))
		dst = append(dst, `,"price":`...)
		dst = fixed(dst, r.uniform(19000, 40000))
		dst = append(dst, `,"step":`...)
		dst = integer(dst, r.intn(8))
	case customMuseum:
		dst = append(dst, `"artwork":`...)
		dst = quote(dst, pick(r, s.sceneInfo().meshes))
		dst = append(dst, `,"room":`...)
		dst = quote(dst, s.sceneInfo().description)
		dst = append(dst, `,"audioGuide":`...)
		dst = boolean(dst, r.chance(0.3))
	case customGame:
		dst = append(dst, `"level":`...)
		dst = integer(dst, s.scene)
		dst = append(dst, `,"score":`...)
		dst = integer(dst, r.between(0, 250000))
		dst = append(dst, `,"lives":`...)
		dst = integer(dst, r.between(0, 3))
		dst = append(dst, `,"difficulty":"normal"`...)
	default: // customRealty
		dst = append(dst, `"room":`...)
		dst = quote(dst, s.sceneInfo().description)
		dst = append(dst, `,"listing":"4412","sqm":`...)
		dst = fixed(dst, r.uniform(8, 40))
		dst = append(dst, `,"floorplan":null`...)
	}
	if g.pii() {
		// A free-text prop that picked up what a visitor typed.
		dst = append(dst, `,"note":`...)
		g.tmp = g.piiText(g.tmp[:0])
		dst = quote(dst, g.tmp)
	}
	return append(dst, "}}"...)
}

func (g *Generator) sceneChange(dst []byte, s *session) []byte {
	r := &g.r
	n := len(s.site.scenes)
	s.scene = (s.scene + 1 + r.intn(n-1)) % n
	s.cam.reset(s.sceneInfo(), r, float64(s.vw)/float64(s.vh))
	g.rebuildEnv(s)
	dst = g.head(dst, s, core.TypeSceneChange)
	if r.chance(0.5) { // the app routes to the scene's page
		dst = append(dst, `,"url":`...)
		dst = g.url(dst, s)
	}
	return append(dst, '}')
}

func (g *Generator) nodeTransform(dst []byte, s *session) []byte {
	r := &g.r
	mesh := pick(r, s.sceneInfo().meshes)
	dst = g.head(dst, s, core.TypeNodeTransform)
	dst = append(dst, `,"nodeId":`...)
	dst = quote(dst, mesh)
	if r.chance(0.1) {
		dst = append(dst, `,"boneId":`...)
		dst = quote(dst, pick(r, bones))
	}
	if r.chance(0.4) {
		b := append(g.tmp[:0], "root/"...)
		b = append(b, s.sceneInfo().id...)
		b = append(b, '/')
		b = append(b, mesh...)
		g.tmp = b
		dst = append(dst, `,"childPath":`...)
		dst = quote(dst, b)
	}
	dst = append(dst, `,"position":`...)
	dst = vec3(dst, s.cam.hit(r))
	a := r.uniform(-math.Pi, math.Pi) / 2 // a door or a turntable turning about y
	dst = append(dst, `,"rotation":`...)
	dst = vec(dst, 0, math.Sin(a), 0, math.Cos(a))
	if r.chance(0.3) {
		k := r.uniform(0.5, 2)
		dst = append(dst, `,"scale":`...)
		dst = vec(dst, k, k, k)
	}
	return append(dst, '}')
}

func (g *Generator) resourceSample(dst []byte, s *session) []byte {
	r := &g.r
	tris := r.between(50_000, 3_000_000)
	dst = g.head(dst, s, core.TypeResourceSample)
	dst = append(dst, `,"textureBytes":`...)
	dst = integer(dst, r.between(20, 600)<<20)
	dst = append(dst, `,"geometryBytes":`...)
	dst = integer(dst, r.between(2, 120)<<20)
	dst = append(dst, `,"triangles":`...)
	dst = integer(dst, tris)
	dst = append(dst, `,"vertices":`...)
	dst = integer(dst, tris*r.between(55, 110)/100)
	dst = append(dst, `,"jsHeapBytes":`...)
	dst = integer(dst, r.between(40_000_000, 400_000_000))
	return append(dst, '}')
}

func (g *Generator) capabilityChange(dst []byte, s *session) []byte {
	c := pick(&g.r, capabilities)
	dst = g.head(dst, s, core.TypeCapabilityChange)
	dst = append(dst, `,"kind":`...)
	dst = quote(dst, c.kind)
	if c.from != "" {
		dst = append(dst, `,"from":`...)
		dst = quote(dst, c.from)
	}
	dst = append(dst, `,"to":`...)
	dst = quote(dst, c.to)
	dst = append(dst, `,"reason":`...)
	dst = quote(dst, c.reason)
	return append(dst, '}')
}

func (g *Generator) assetLoad(dst []byte, s *session) []byte {
	r := &g.r
	assets := s.sceneInfo().assets
	first := s.assets == 0
	b := g.tmp[:0]
	if r.chance(0.5) {
		b = append(b, s.site.cdn...)
		b = append(b, '/')
	}
	b = append(b, assets[s.assets%len(assets)]...)
	s.assets++
	if g.pii() {
		b = g.piiQuery(b) // a signed or personalised asset URL
	}
	g.tmp = b
	load := r.between(20, 4000)
	dst = g.head(dst, s, core.TypeAssetLoad)
	dst = append(dst, `,"name":`...)
	dst = quote(dst, b)
	dst = append(dst, `,"loadMs":`...)
	dst = fixed(dst, float64(load)+r.float())
	dst = append(dst, `,"bytes":`...)
	dst = integer(dst, r.between(10_000, 40_000_000))
	if first {
		dst = append(dst, `,"ttffMs":`...)
		dst = integer(dst, load+r.between(30, 600))
		dst = append(dst, `,"ttiMs":`...)
		dst = integer(dst, load+r.between(600, 3000))
	}
	return append(dst, '}')
}

func (g *Generator) compileStall(dst []byte, s *session) []byte {
	r := &g.r
	dst = g.head(dst, s, core.TypeCompileStall)
	dst = append(dst, `,"durationMs":`...)
	dst = fixed(dst, r.uniform(20, 900))
	dst = append(dst, `,"phase":`...)
	dst = quote(dst, pick(r, stallPhases))
	return append(dst, '}')
}

func (g *Generator) viewportResize(dst []byte, s *session) []byte {
	r := &g.r
	if s.dev.mobile {
		s.vw, s.vh = s.vh, s.vw // rotated
	} else {
		s.vw, s.vh = r.between(800, 2560), r.between(500, 1400)
	}
	s.cam.aspect = float64(s.vw) / float64(s.vh)
	dst = g.head(dst, s, core.TypeViewportResize)
	dst = append(dst, `,"width":`...)
	dst = integer(dst, s.vw)
	dst = append(dst, `,"height":`...)
	dst = integer(dst, s.vh)
	dst = append(dst, `,"dpr":`...)
	dst = fixed(dst, s.dev.dpr)
	return append(dst, '}')
}

func (g *Generator) visibility(dst []byte, s *session, state string) []byte {
	dst = g.head(dst, s, core.TypeVisibilityChange)
	dst = append(dst, `,"state":`...)
	dst = quote(dst, state)
	return append(dst, '}')
}

func (g *Generator) focus(dst []byte, s *session, focused bool) []byte {
	dst = g.head(dst, s, core.TypeFocusChange)
	dst = append(dst, `,"focused":`...)
	dst = boolean(dst, focused)
	return append(dst, '}')
}

func (g *Generator) contextLost(dst []byte, s *session) []byte {
	dst = g.head(dst, s, core.TypeContextLost)
	if g.r.chance(0.7) {
		dst = append(dst, `,"reason":`...)
		dst = quote(dst, pick(&g.r, contextLostReasons))
	}
	return append(dst, '}')
}

func (g *Generator) graphicsDiagnostic(dst []byte, s *session) []byte {
	r := &g.r
	d := pick(r, diagnostics)
	if d.category == "device-lost" && s.dev.api != "webgpu" {
		d = webglContextLoss
	}
	dst = g.head(dst, s, core.TypeGraphicsDiagnostic)
	dst = append(dst, `,"severity":`...)
	dst = quote(dst, d.severity)
	dst = append(dst, `,"category":`...)
	dst = quote(dst, d.category)
	dst = append(dst, `,"backend":`...)
	dst = quote(dst, s.dev.api)
	dst = append(dst, `,"message":`...)
	dst = quote(dst, d.message)
	dst = append(dst, `,"code":`...)
	dst = quote(dst, d.code)
	dst = append(dst, `,"count":`...)
	dst = integer(dst, r.between(1, 12))
	return append(dst, '}')
}

func (g *Generator) runtimeError(dst []byte, s *session) []byte {
	r := &g.r
	e := pick(r, jsErrors)
	line, col := r.between(1, 9000), r.between(1, 240)
	dst = g.head(dst, s, core.TypeRuntimeError)
	dst = append(dst, `,"kind":`...)
	dst = quote(dst, e.kind)

	b := append(g.tmp[:0], e.message...)
	if g.pii() {
		b = append(b, " ("...)
		b = g.piiText(b)
		b = append(b, ')')
	}
	g.tmp = b
	dst = append(dst, `,"message":`...)
	dst = quote(dst, b)

	b = append(g.tmp[:0], s.site.cdn...)
	b = append(b, "/js/app.3f9c2e.js"...)
	if g.pii() {
		b = g.piiQuery(b)
	}
	g.tmp = b
	dst = append(dst, `,"source":`...)
	dst = quote(dst, b)
	dst = append(dst, `,"lineno":`...)
	dst = integer(dst, line)
	dst = append(dst, `,"colno":`...)
	dst = integer(dst, col)

	if r.chance(0.8) {
		b = append(g.tmp[:0], e.message...)
		b = append(b, "\n    at "...)
		b = append(b, e.fn...)
		b = append(b, " ("...)
		b = append(b, s.site.cdn...)
		b = append(b, "/js/app.3f9c2e.js:"...)
		b = integer(b, line)
		b = append(b, ':')
		b = integer(b, col)
		b = append(b, ")\n    at render ("...)
		b = append(b, s.site.cdn...)
		b = append(b, "/js/vendor.81d0aa.js:2:"...)
		b = integer(b, r.between(1000, 90000))
		b = append(b, ")\n    at "...)
		if g.pii() {
			b = append(b, "submitForm ("...)
			b = append(b, s.site.origin...)
			b = append(b, "/checkout"...)
			b = g.piiQuery(b)
			b = append(b, ":1:1)"...)
		} else {
			b = append(b, "requestAnimationFrame (native)"...)
		}
		g.tmp = b
		dst = append(dst, `,"stack":`...)
		dst = quote(dst, b)
	}
	return append(dst, '}')
}

func (g *Generator) inputAction(dst []byte, s *session) []byte {
	r := &g.r
	a := pick(r, actions)
	if a.source == "xr-controller" && !s.dev.xr {
		a = actions[0]
	}
	dst = g.head(dst, s, core.TypeInputAction)
	dst = append(dst, `,"action":`...)
	dst = quote(dst, a.action)
	dst = append(dst, `,"code":`...)
	dst = quote(dst, a.code)
	if a.source != "keyboard" {
		dst = append(dst, `,"button":0`...)
	}
	dst = append(dst, `,"pressed":`...)
	dst = boolean(dst, r.chance(0.8))
	dst = append(dst, `,"source":`...)
	dst = quote(dst, a.source)
	return append(dst, '}')
}
