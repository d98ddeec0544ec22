package core

// EventType is one of the 27 event types of the contract (docs/API.md, "Validation"; their fields in schema.go).
type EventType uint8

// The event types. TypeInvalid is the zero value and never names a stored event.
const (
	TypeInvalid EventType = iota
	TypeSessionStart
	TypeSessionEnd
	TypeFramePerf
	TypeCameraSample
	TypeNodeTransform
	TypePointerMove
	TypePointerClick
	TypePointerDown
	TypePointerUp
	TypeCameraGesture
	TypeMeshInteraction
	TypeMeshVisibility
	TypeHoverDwell
	TypeCompileStall
	TypeResourceSample
	TypeCapabilityChange
	TypeAssetLoad
	TypeSceneChange
	TypeViewportResize
	TypeVisibilityChange
	TypeFocusChange
	TypeContextLost
	TypeContextRestored
	TypeGraphicsDiagnostic
	TypeRuntimeError
	TypeInputAction
	TypeCustom

	// NumEventTypes is one past the largest EventType; arrays indexed by
	// EventType have this length.
	NumEventTypes
)

var typeNames = [NumEventTypes]string{
	TypeInvalid:            "invalid",
	TypeSessionStart:       "session_start",
	TypeSessionEnd:         "session_end",
	TypeFramePerf:          "frame_perf",
	TypeCameraSample:       "camera_sample",
	TypeNodeTransform:      "node_transform",
	TypePointerMove:        "pointer_move",
	TypePointerClick:       "pointer_click",
	TypePointerDown:        "pointer_down",
	TypePointerUp:          "pointer_up",
	TypeCameraGesture:      "camera_gesture",
	TypeMeshInteraction:    "mesh_interaction",
	TypeMeshVisibility:     "mesh_visibility",
	TypeHoverDwell:         "hover_dwell",
	TypeCompileStall:       "compile_stall",
	TypeResourceSample:     "resource_sample",
	TypeCapabilityChange:   "capability_change",
	TypeAssetLoad:          "asset_load",
	TypeSceneChange:        "scene_change",
	TypeViewportResize:     "viewport_resize",
	TypeVisibilityChange:   "visibility_change",
	TypeFocusChange:        "focus_change",
	TypeContextLost:        "context_lost",
	TypeContextRestored:    "context_restored",
	TypeGraphicsDiagnostic: "graphics_diagnostic",
	TypeRuntimeError:       "runtime_error",
	TypeInputAction:        "input_action",
	TypeCustom:             "custom",
}

// String returns the wire name of t ("camera_sample"), or "invalid".
func (t EventType) String() string {
	if t >= NumEventTypes {
		return typeNames[TypeInvalid]
	}
	return typeNames[t]
}

var typeByName = func() map[string]EventType {
	m := make(map[string]EventType, NumEventTypes)
	for t := TypeSessionStart; t < NumEventTypes; t++ {
		m[typeNames[t]] = t
	}
	return m
}()

// ParseEventType maps a wire name to its EventType; ok is false for unknown names.
// It does not allocate.
func ParseEventType(name []byte) (t EventType, ok bool) {
	t, ok = typeByName[string(name)]
	return t, ok
}
