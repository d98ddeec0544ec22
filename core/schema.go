package core

import (
	"strconv"
	"strings"
)

// The schema of the 27 event types (docs/API.md, "Validation") as tables. They are built once
// at start-up, with every rejection message, so that validation compares and
// looks up but never formats.

// fieldKind is how a field's value is checked and written.
type fieldKind uint8

const (
	kString  fieldKind = iota + 1 // UTF-8 string, length bounds in UTF-16 units
	kNumber                       // strict JSON number with a numRule
	kBool                         // true or false
	kEnum                         // one of a fixed set of strings
	kVec                          // array of exactly vecLen numbers
	kObject                       // nested object with its own schema
	kMap                          // traits / props: flat bag of scalars
	kSceneID                      // ^[A-Za-z0-9._:-]{1,64}$
	kTS                           // integral epoch ms in [0, 2^53]
	kIgnore                       // known, but the client's value is dropped
	kBrowser                      // server-stamped coarse browser family
	kOS                           // server-stamped coarse OS family
)

// numRule is the constraint on a number beyond being finite.
type numRule uint8

const (
	numFinite numRule = iota
	numGE0            // ≥ 0
	numGT0            // > 0
	numUnit           // in [0, 1]
	numInt            // integral
	numIntGE0         // integral, ≥ 0
	numIntGT0         // integral, > 0
)

// fieldSpec describes one known field of an object.
type fieldSpec struct {
	name     string
	path     string // dotted path used in Reasons
	kind     fieldKind
	required bool
	min, max int     // kString bounds
	num      numRule // kNumber, and the elements of kVec
	vecLen   int
	enum     []string
	obj      *objectSpec
	gated    bool   // gating can remove the field …
	strip    Strip  // … under this channel
	msg      string // the message when the value is of the wrong shape
	key      string // `"name":`
}

// objectSpec is the schema of an object: an event, or a nested object.
type objectSpec struct {
	fields []fieldSpec
	index  fieldIndex // name → position in fields + 1
	// open objects keep extra keys (see extras); closed ones drop them.
	open bool
	// depth of the object below the event: 1 for device, pageMeta, …
	depth int
	// stamped objects have server-written members and are written even
	// when the client sent none.
	stamped bool
}

// Limits on values outside the schema.
const (
	maxMapEntries   = 64   // traits, props
	maxMapKey       = 128  // key length of traits, props and extras
	maxScalarString = 1024 // string values of traits, props and extras
	maxExtraKeys    = 32   // unknown keys considered per open object
	maxExtraArray   = 64   // elements of an extra array
	maxDepth        = 3    // deepest object level below the event
	maxSlots        = 32   // known fields per object (fits the seen mask)
)

// Rejection messages shared by many fields.
const (
	msgRequired    = "required"
	msgDuplicate   = "duplicate field"
	msgDuplicateK  = "duplicate key"
	msgUTF8        = "invalid text: not valid UTF-8" // see InvalidText
	msgBadNumber   = "invalid number"
	msgNotFinite   = "must be finite"
	msgObject      = "must be an object"
	msgEvent       = "event must be an object"
	msgString      = "must be a string"
	msgUnknownType = "unknown event type"
	msgBool        = "must be a boolean"
	msgTS          = "must be an integer ≥ 0 and ≤ 2^53"
	msgSceneID     = "must match ^[A-Za-z0-9._:-]{1,64}$"
	msgMapSize     = "must have at most 64 entries"
	msgMapKey      = "keys must be strings of 1–128 characters"
	msgMapValue    = "values must be strings of at most 1024 characters, numbers, booleans or null"
)

var numMsgs = [...]string{
	numFinite: "must be a number",
	numGE0:    "must be a number ≥ 0",
	numGT0:    "must be a number > 0",
	numUnit:   "must be a number in [0, 1]",
	numInt:    "must be an integer",
	numIntGE0: "must be an integer ≥ 0",
	numIntGT0: "must be an integer > 0",
}

var numElemMsgs = [...]string{
	numFinite: "numbers",
	numGE0:    "numbers ≥ 0",
	numGT0:    "numbers > 0",
	numUnit:   "numbers in [0, 1]",
	numInt:    "integers",
	numIntGE0: "integers ≥ 0",
	numIntGT0: "integers > 0",
}

// Field constructors, used only to build the tables.

func str(name string, min, max int) fieldSpec {
	return fieldSpec{name: name, kind: kString, min: min, max: max}
}

func num(name string, r numRule) fieldSpec { return fieldSpec{name: name, kind: kNumber, num: r} }

func boolean(name string) fieldSpec { return fieldSpec{name: name, kind: kBool} }

func enum(name string, values ...string) fieldSpec {
	return fieldSpec{name: name, kind: kEnum, enum: values}
}

func vec(name string, n int, r numRule) fieldSpec {
	return fieldSpec{name: name, kind: kVec, vecLen: n, num: r}
}

func vec3(name string) fieldSpec { return vec(name, 3, numFinite) }

func object(name string, open bool, fields ...fieldSpec) fieldSpec {
	return fieldSpec{name: name, kind: kObject, obj: &objectSpec{fields: fields, open: open}}
}

func bag(name string) fieldSpec { return fieldSpec{name: name, kind: kMap} }

func req(f fieldSpec) fieldSpec {
	f.required = true
	return f
}

func gated(f fieldSpec, s Strip) fieldSpec {
	f.gated = true
	f.strip = s
	return f
}

// Positions of the envelope fields in every event's objectSpec.
const (
	envType = iota
	envProjectID
	envSessionID
	envTS
	envSDKVersion
	envSceneID
	envURL
	envPageMeta
	envVisitorID
	envFields // payload fields start here
)

func envelope() []fieldSpec {
	return []fieldSpec{
		envType:       req(fieldSpec{name: "type", kind: kIgnore}),
		envProjectID:  req(str("projectId", 1, 128)),
		envSessionID:  req(str("sessionId", 1, 128)),
		envTS:         req(fieldSpec{name: "ts", kind: kTS}),
		envSDKVersion: req(str("sdkVersion", 1, 64)),
		envSceneID:    {name: "sceneId", kind: kSceneID},
		envURL:        str("url", 0, 2048),
		envPageMeta: object("pageMeta", true,
			str("title", 0, 512),
			str("referrer", 0, 2048),
			vec("viewport", 2, numGE0),
			num("devicePixelRatio", numGT0),
			str("language", 0, 35),
		),
		envVisitorID: {name: "visitorId", kind: kIgnore},
	}
}

// src returns the input-source fields (marked *src* in the catalog).
func src() []fieldSpec {
	return []fieldSpec{
		enum("source", "mouse", "touch", "stylus", "pen", "keyboard", "gamepad", "xr-controller", "hand", "gaze", "transient", "other"),
		enum("handedness", "left", "right", "none"),
		str("sourceId", 1, 64),
		object("ray", false, req(vec3("origin")), req(vec3("direction"))),
	}
}

func with(fields []fieldSpec, more ...fieldSpec) []fieldSpec { return append(fields, more...) }

// pointerFields are the payload of pointer_click, pointer_down and pointer_up.
func pointerFields() []fieldSpec {
	return with([]fieldSpec{vec("screen", 2, numUnit), vec3("hitPoint"), str("hitMesh", 0, 256), num("button", numIntGE0)}, src()...)
}

// payloads lists each type's payload fields in catalog order.
var payloads = [NumEventTypes][]fieldSpec{
	TypeSessionStart: {
		object("device", true,
			enum("engine", "webgl2", "webgpu", "webgl", "unknown"),
			str("vendor", 0, 256),
			str("renderer", 0, 512),
			num("maxTextureSize", numFinite),
			num("hardwareConcurrency", numFinite),
			num("deviceMemoryGb", numFinite),
			boolean("isMobile"),
			fieldSpec{name: "browser", kind: kBrowser},
			fieldSpec{name: "os", kind: kOS},
		),
		object("graphics", true,
			str("api", 0, 256),
			str("backend", 0, 256),
			str("apiVersion", 0, 256),
			str("shadingLanguage", 0, 256),
		),
		object("scene", true,
			str("description", 0, 256),
			enum("cameraType", "arc-rotate", "free", "follow", "static", "other"),
			str("cameraName", 0, 128),
			num("meshCount", numIntGE0),
		),
		object("user", false,
			str("id", 0, 128),
			bag("traits"),
		),
		object("connector", true,
			req(str("name", 1, 64)),
			str("version", 0, 256),
			object("coordinateSystem", true,
				str("handedness", 0, 64),
				str("upAxis", 0, 64),
				num("unitScale", numGT0),
			),
		),
	},
	TypeSessionEnd: {
		num("durationMs", numGE0),
		enum("reason", "unload", "hidden", "manual", "timeout"),
	},
	TypeFramePerf: {
		req(num("fps", numGE0)),
		num("frameTimeMs", numGE0),
		num("frameTimeP95Ms", numGE0),
		num("frameTimeP99Ms", numGE0),
		num("longFrames", numIntGE0),
		num("drawCalls", numGE0),
		num("dpr", numGT0),
		num("renderScale", numGT0),
	},
	TypeCameraSample: {
		req(vec3("position")),
		req(vec3("direction")),
		vec3("target"),
		num("fov", numGT0),
		num("aspect", numGT0),
		num("near", numGT0),
		gated(vec3("hitPoint"), StripGaze),
		gated(str("hitMesh", 0, 256), StripGaze),
	},
	TypeNodeTransform: {
		req(str("nodeId", 1, 128)),
		str("boneId", 1, 128),
		str("childPath", 1, 512),
		req(vec3("position")),
		req(vec("rotation", 4, numFinite)),
		vec3("scale"),
	},
	TypePointerMove:  with([]fieldSpec{vec("screen", 2, numUnit), vec3("hitPoint"), str("hitMesh", 0, 256)}, src()...),
	TypePointerClick: pointerFields(),
	TypePointerDown:  pointerFields(),
	TypePointerUp:    pointerFields(),
	TypeCameraGesture: with([]fieldSpec{
		req(enum("kind", "orbit", "pan", "dolly", "zoom", "roll", "fly", "navigate")),
		req(num("durationMs", numGE0)),
		num("orbitDeg", numGE0),
		num("rollDeg", numGE0),
		num("zoomRatio", numGT0),
		num("panDist", numGE0),
	}, src()...),
	TypeMeshInteraction: with([]fieldSpec{
		req(str("mesh", 1, 256)),
		req(enum("kind", "hover", "pick", "click", "drag", "select", "squeeze", "grab", "release", "teleport")),
		vec3("point"),
	}, src()...),
	TypeMeshVisibility: {
		req(str("mesh", 1, 256)),
		req(num("visibleMs", numGE0)),
		num("centeredMs", numGE0),
		num("maxScreenFraction", numUnit),
		gated(vec("bounds", 6, numFinite), StripBounds),
	},
	TypeHoverDwell: with([]fieldSpec{
		req(str("mesh", 1, 256)),
		req(num("dwellMs", numGE0)),
	}, src()...),
	TypeCompileStall: {
		req(num("durationMs", numGE0)),
		enum("phase", "shader", "pipeline", "material", "other"),
	},
	TypeResourceSample: {
		num("textureBytes", numGE0),
		num("geometryBytes", numGE0),
		num("triangles", numIntGE0),
		num("vertices", numIntGE0),
		num("jsHeapBytes", numGE0),
	},
	TypeCapabilityChange: {
		req(enum("kind", "graphics-backend", "quality", "device-recovery", "feature", "other")),
		str("from", 0, 64),
		str("to", 0, 64),
		str("reason", 0, 120),
	},
	TypeAssetLoad: {
		req(str("name", 0, 1024)),
		req(num("loadMs", numGE0)),
		num("bytes", numGE0),
		num("ttffMs", numGE0),
		num("ttiMs", numGE0),
	},
	TypeSceneChange: nil,
	TypeViewportResize: {
		req(num("width", numGT0)),
		req(num("height", numGT0)),
		num("dpr", numGT0),
	},
	TypeVisibilityChange: {req(enum("state", "visible", "hidden"))},
	TypeFocusChange:      {req(boolean("focused"))},
	TypeContextLost:      {str("reason", 0, 512)},
	TypeContextRestored:  nil,
	TypeGraphicsDiagnostic: {
		req(enum("severity", "info", "warning", "error", "fatal")),
		req(enum("category", "context-loss", "validation", "out-of-memory", "shader-compile", "device-lost", "fallback")),
		str("backend", 0, 256),
		str("message", 0, 1024),
		str("code", 0, 64),
		num("count", numIntGT0),
	},
	TypeRuntimeError: {
		req(enum("kind", "error", "unhandledrejection")),
		req(str("message", 0, 1024)),
		str("source", 0, 1024),
		num("lineno", numIntGE0),
		num("colno", numIntGE0),
		str("stack", 0, 4096),
	},
	TypeInputAction: with([]fieldSpec{
		req(str("action", 1, 64)),
		str("code", 1, 64),
		num("button", numIntGE0),
		boolean("pressed"),
	}, src()...),
	TypeCustom: {
		req(str("name", 1, 128)),
		bag("props"),
	},
}

// eventSpecs holds, for each type, the envelope followed by its payload.
var eventSpecs = func() (specs [NumEventTypes]*objectSpec) {
	for t := TypeSessionStart; t < NumEventTypes; t++ {
		o := &objectSpec{fields: with(envelope(), payloads[t]...)}
		finish(o, "", 0)
		specs[t] = o
	}
	return specs
}()

// finish fills in paths, keys, messages and indexes of o and its children.
func finish(o *objectSpec, prefix string, depth int) {
	if len(o.fields) > maxSlots {
		panic("core: too many fields in schema object " + prefix)
	}
	o.depth = depth
	for i := range o.fields {
		f := &o.fields[i]
		f.path = prefix + f.name
		f.key = strconv.Quote(f.name) + ":"
		f.msg = fieldMessage(f)
		if f.obj != nil {
			finish(f.obj, f.path+".", depth+1)
		}
		if o.index.get(f.name) != 0 {
			panic("core: schema field listed twice: " + f.path)
		}
		o.index.put(f.name, uint8(i+1))
		if f.kind == kBrowser || f.kind == kOS {
			o.stamped = true
		}
	}
}

func fieldMessage(f *fieldSpec) string {
	switch f.kind {
	case kString:
		if f.min > 0 {
			return "must be a string of " + strconv.Itoa(f.min) + "–" + strconv.Itoa(f.max) + " characters"
		}
		return "must be a string of at most " + strconv.Itoa(f.max) + " characters"
	case kNumber:
		return numMsgs[f.num]
	case kBool:
		return msgBool
	case kEnum:
		return "must be one of: " + strings.Join(f.enum, ", ")
	case kVec:
		return "must be an array of " + strconv.Itoa(f.vecLen) + " " + numElemMsgs[f.num]
	case kObject, kMap:
		return msgObject
	case kSceneID:
		return msgSceneID
	case kTS:
		return msgTS
	}
	return msgString
}

// fieldIndex maps a field name to its position in an object's fields + 1
// (0: not a field). It is looked up for every member of every event, so it
// is a small open-addressed table keyed by a hash of the name's length and
// end bytes, confirmed by comparing the name: cheaper than a map, which
// hashes the whole key. An object has at most maxSlots (32) fields, so the
// table is at most half full.
type fieldIndex struct {
	pos   [fieldIndexSize]uint8
	names [fieldIndexSize]string
}

const fieldIndexSize = 64

func fieldHash[S ~string | ~[]byte](k S) int {
	if len(k) == 0 {
		return 0
	}
	return (len(k)*131 + int(k[0])*31 + int(k[len(k)-1])) & (fieldIndexSize - 1)
}

func (x *fieldIndex) get(k string) uint8 { return lookupField(x, k) }

// getBytes is get for a key in a byte slice (no conversion, no allocation).
func (x *fieldIndex) getBytes(k []byte) uint8 { return lookupField(x, k) }

func lookupField[S ~string | ~[]byte](x *fieldIndex, k S) uint8 {
	for h, n := fieldHash(k), 0; n < fieldIndexSize; h, n = (h+1)&(fieldIndexSize-1), n+1 {
		p := x.pos[h]
		if p == 0 {
			return 0
		}
		if x.names[h] == string(k) {
			return p
		}
	}
	return 0
}

func (x *fieldIndex) put(k string, pos uint8) {
	h := fieldHash(k)
	for x.pos[h] != 0 {
		h = (h + 1) & (fieldIndexSize - 1)
	}
	x.pos[h], x.names[h] = pos, k
}
