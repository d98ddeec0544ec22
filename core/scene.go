package core

import (
	"math"
	"strconv"
	"time"
)

// Scene representations (docs/API.md, "Scene registry"): a light proxy of a
// scene's geometry, one axis-aligned box per mesh, that an SDK uploads once
// per scene version. AppendScene validates one and writes its canonical JSON
// (docs/API.md, "Stored form") with the number, string and null rules of
// events and the same quoting as the event encoder.

// Scene representation bounds (docs/API.md, "Scene registry", "Body").
const (
	maxSceneMeshes    = 10000
	maxSceneIDLen     = 64
	maxMeshNameLen    = 256
	maxMeshPathLen    = 1024
	maxContentHashLen = 128
	maxSceneSDKVerLen = 64
	maxSceneKindLen   = 16
	maxSceneInt       = 1 << 53
)

// sceneIDChars marks the bytes allowed in a sceneId.
var sceneIDChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	t['.'], t['_'], t[':'], t['-'] = true, true, true, true
	return t
}()

// ValidSceneID reports whether id is 1–64 characters of A-Z a-z 0-9 . _ : -,
// the alphabet of event sceneIds and of the scene registry's paths.
func ValidSceneID(id []byte) bool {
	if len(id) == 0 || len(id) > maxSceneIDLen {
		return false
	}
	for _, c := range id {
		if !sceneIDChars[c] {
			return false
		}
	}
	return true
}

// Scene is what the listing row of a validated scene representation says of
// it. Its byte slices are views of the strings of the Value it was read from.
type Scene struct {
	ID          []byte
	MeshCount   int64
	ContentHash []byte
	CapturedAt  int64
	SDKVersion  []byte
}

// SceneError is why a scene representation is refused: the first problem
// found, named by its JSON path ("meshes[12].aabb: minY 3 > maxY 1: want min
// ≤ max on each axis"). It wraps ErrRejected.
type SceneError struct {
	Msg string
}

func (e *SceneError) Error() string { return e.Msg }

// Unwrap returns ErrRejected.
func (e *SceneError) Unwrap() error { return ErrRejected }

// AppendScene validates v as the representation of the scene pathID (the id
// in the request's path, which the document's sceneId must equal) and appends
// its canonical JSON to dst: known members only, in a fixed order, numbers in
// their shortest round-trip form, strings quoted as appendQuoted quotes them.
// On failure it returns dst as given and a *SceneError.
func AppendScene(dst []byte, v Value, pathID []byte) ([]byte, Scene, error) {
	var e sceneEncoder
	out, msg := e.encode(dst, v, pathID)
	if msg != "" {
		return dst, Scene{}, &SceneError{Msg: msg}
	}
	return out, e.scene, nil
}

// AppendSummary appends the listing row of s, stored at updated (written in
// UTC with milliseconds).
func (s *Scene) AppendSummary(dst []byte, updated time.Time) []byte {
	b := append(dst, `{"scene_id":`...)
	b = appendQuoted(b, s.ID)
	b = append(b, `,"version":1,"kind":"aabb","meshCount":`...)
	b = strconv.AppendInt(b, s.MeshCount, 10)
	b = append(b, `,"contentHash":`...)
	b = appendQuoted(b, s.ContentHash)
	b = append(b, `,"capturedAt":`...)
	b = strconv.AppendInt(b, s.CapturedAt, 10)
	b = append(b, `,"sdkVersion":`...)
	b = appendQuoted(b, s.SDKVersion)
	b = append(b, `,"updated_at":"`...)
	b = updated.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, `"}`...)
}

// sceneEncoder holds one AppendScene's state and scratch space.
type sceneEncoder struct {
	scene  Scene
	fields []Field // members of the object being read
	num    []byte  // the number token being read
}

// absent reports whether a member is missing or null.
func absent(v Value) bool { return v == nil || v.Kind() == KindNull }

// encode validates v and appends its canonical form to b. On failure msg says
// which field is wrong and how.
func (e *sceneEncoder) encode(b []byte, v Value, pathID []byte) (out []byte, msg string) {
	if v == nil || v.Kind() != KindObject {
		return nil, "body must be a JSON object: {\"version\":1,\"kind\":\"aabb\",\"sceneId\":…}"
	}
	var f struct {
		version, kind, sceneID, bounds, upAxis, unitScale, meshes,
		meshCount, contentHash, capturedAt, sdkVersion Value
	}
	e.fields = v.Fields(e.fields[:0])
	for _, m := range e.fields {
		var slot *Value
		switch string(m.Key) {
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
			continue // unknown members are dropped
		}
		if *slot != nil {
			return nil, string(m.Key) + ": " + msgDuplicate
		}
		*slot = m.Val
	}

	b = append(b, `{"version":`...)
	if n, why := e.integer(f.version); why != "" {
		return nil, "version: " + why
	} else if n != 1 {
		return nil, "version: unsupported version " + strconv.FormatInt(n, 10) + ": want 1"
	}
	b = append(b, '1')

	kind, why := e.str(f.kind, 1, maxSceneKindLen)
	if why != "" {
		return nil, "kind: " + why
	}
	if string(kind) != "aabb" {
		return nil, "kind: unsupported kind " + strconv.Quote(string(kind)) + ": want \"aabb\""
	}
	b = append(b, `,"kind":"aabb"`...)

	id, why := e.str(f.sceneID, 1, maxSceneIDLen)
	if why != "" {
		return nil, "sceneId: " + why
	}
	if !ValidSceneID(id) {
		return nil, "sceneId: use 1–64 characters of A-Z a-z 0-9 . _ : -"
	}
	if string(id) != string(pathID) {
		return nil, "sceneId: " + strconv.Quote(string(id)) + " does not match the scene id in the path " + strconv.Quote(string(pathID))
	}
	e.scene.ID = id
	b = append(b, `,"sceneId":`...)
	b = appendQuoted(b, id)

	b = append(b, `,"bounds":`...)
	if b, msg = e.appendAABB(b, f.bounds, func() string { return "bounds" }); msg != "" {
		return nil, msg
	}

	const axes = "one of x, y, z, +x, +y, +z, -x, -y, -z"
	if absent(f.upAxis) {
		return nil, "upAxis: required (" + axes + ")"
	}
	axis, why := e.str(f.upAxis, 1, 2)
	if why != "" {
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

	if absent(f.unitScale) {
		return nil, "unitScale: " + msgRequired
	}
	us, ok := e.number(f.unitScale)
	if !ok || us <= 0 {
		return nil, "unitScale: want a finite number > 0"
	}
	b = append(b, `,"unitScale":`...)
	b = appendCanonicalFloat(b, us)

	// meshCount is checked against the list below, once its length is known.
	if e.scene.MeshCount, why = e.integer(f.meshCount); why != "" {
		return nil, "meshCount: " + why
	}
	b = append(b, `,"meshCount":`...)
	b = strconv.AppendInt(b, e.scene.MeshCount, 10)

	if e.scene.ContentHash, why = e.str(f.contentHash, 1, maxContentHashLen); why != "" {
		return nil, "contentHash: " + why
	}
	b = append(b, `,"contentHash":`...)
	b = appendQuoted(b, e.scene.ContentHash)

	if e.scene.CapturedAt, why = e.integer(f.capturedAt); why != "" {
		return nil, "capturedAt: " + why + " (epoch milliseconds)"
	}
	b = append(b, `,"capturedAt":`...)
	b = strconv.AppendInt(b, e.scene.CapturedAt, 10)

	if e.scene.SDKVersion, why = e.str(f.sdkVersion, 1, maxSceneSDKVerLen); why != "" {
		return nil, "sdkVersion: " + why
	}
	b = append(b, `,"sdkVersion":`...)
	b = appendQuoted(b, e.scene.SDKVersion)

	if absent(f.meshes) {
		return nil, "meshes: required (an array, possibly empty)"
	}
	if f.meshes.Kind() != KindArray {
		return nil, "meshes: want an array of {name, aabb, triangles?, path?}"
	}
	n := f.meshes.Len()
	if n > maxSceneMeshes {
		return nil, "meshes: " + strconv.Itoa(n) + " meshes, at most 10000 allowed"
	}
	if e.scene.MeshCount < int64(n) {
		return nil, "meshCount: " + strconv.FormatInt(e.scene.MeshCount, 10) + " is less than the " + strconv.Itoa(n) + " meshes listed"
	}
	b = append(b, `,"meshes":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if b, msg = e.appendMesh(b, i, f.meshes.At(i)); msg != "" {
			return nil, msg
		}
	}
	return append(b, "]}"...), ""
}

// meshPath is the JSON path of entry i of meshes.
func meshPath(i int) string { return "meshes[" + strconv.Itoa(i) + "]" }

// appendMesh validates entry i of meshes and appends its canonical form.
func (e *sceneEncoder) appendMesh(b []byte, i int, v Value) ([]byte, string) {
	if v.Kind() != KindObject {
		return b, meshPath(i) + ": want an object {name, aabb, triangles?, path?}"
	}
	var name, aabb, tris, path Value
	e.fields = v.Fields(e.fields[:0])
	for _, m := range e.fields {
		var slot *Value
		switch string(m.Key) {
		case "name":
			slot = &name
		case "aabb":
			slot = &aabb
		case "triangles":
			slot = &tris
		case "path":
			slot = &path
		default:
			continue
		}
		if *slot != nil {
			return b, meshPath(i) + "." + string(m.Key) + ": " + msgDuplicate
		}
		*slot = m.Val
	}
	s, why := e.str(name, 1, maxMeshNameLen)
	if why != "" {
		return b, meshPath(i) + ".name: " + why
	}
	b = append(b, `{"name":`...)
	b = appendQuoted(b, s)
	b = append(b, `,"aabb":`...)
	var msg string
	if b, msg = e.appendAABB(b, aabb, func() string { return meshPath(i) + ".aabb" }); msg != "" {
		return b, msg
	}
	if !absent(tris) {
		n, why := e.integer(tris)
		if why != "" {
			return b, meshPath(i) + ".triangles: " + why
		}
		b = append(b, `,"triangles":`...)
		b = strconv.AppendInt(b, n, 10)
	}
	if !absent(path) {
		s, why := e.str(path, 0, maxMeshPathLen)
		if why != "" {
			return b, meshPath(i) + ".path: " + why
		}
		b = append(b, `,"path":`...)
		b = appendQuoted(b, s)
	}
	return append(b, '}'), ""
}

// appendAABB validates [minX,minY,minZ,maxX,maxY,maxZ] and appends it; at
// names the field, for the message of a failure.
func (e *sceneEncoder) appendAABB(b []byte, v Value, at func() string) ([]byte, string) {
	const want = "want [minX,minY,minZ,maxX,maxY,maxZ] of finite numbers with min ≤ max"
	if absent(v) {
		return b, at() + ": required " + want
	}
	if v.Kind() != KindArray || v.Len() != 6 {
		return b, at() + ": " + want
	}
	var x [6]float64
	for i := range x {
		f, ok := e.number(v.At(i))
		if !ok {
			return b, at() + "[" + strconv.Itoa(i) + "]: want a finite number"
		}
		x[i] = f
	}
	for i := range 3 {
		if x[i] > x[i+3] {
			axis := "XYZ"[i : i+1]
			return b, at() + ": min" + axis + " " + strconv.FormatFloat(x[i], 'g', -1, 64) +
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

// str returns a required string member whose length in UTF-16 code units
// (as the JavaScript SDKs count, see utf16Len) is within [lo, hi]; why says
// what is wrong otherwise.
func (e *sceneEncoder) str(v Value, lo, hi int) (s []byte, why string) {
	if absent(v) {
		return nil, msgRequired
	}
	if v.Kind() != KindString {
		return nil, "want a string"
	}
	s = v.Str()
	n, ok := utf16Len(s)
	switch {
	case !ok:
		return nil, InvalidText(s)
	case n < lo || n > hi:
		if lo == 0 {
			return nil, "at most " + strconv.Itoa(hi) + " characters"
		}
		return nil, "want " + strconv.Itoa(lo) + "–" + strconv.Itoa(hi) + " characters"
	}
	return s, ""
}

// integer returns a required integer member in [0, 2^53], decided on its
// float64 value: 1e3 and 1.0 are integers; 1.5 is not.
func (e *sceneEncoder) integer(v Value) (int64, string) {
	if absent(v) {
		return 0, msgRequired
	}
	f, ok := e.number(v)
	if !ok || f < 0 || f > maxSceneInt || f != math.Trunc(f) {
		return 0, "want an integer 0 to 2^53"
	}
	return int64(f), ""
}

// number returns a JSON number's value: the token must follow the JSON
// grammar and be finite as a float64 (see ParseNumber).
func (e *sceneEncoder) number(v Value) (float64, bool) {
	if v.Kind() != KindNumber {
		return 0, false
	}
	e.num = v.AppendNumber(e.num[:0])
	return ParseNumber(e.num)
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
