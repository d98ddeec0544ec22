package core

// Channels are a project's capture-channel settings (docs/API.md, "Channel gating"). They are decided
// on the server, whatever the client sent. The zero value is not the default:
// use DefaultChannels.
type Channels struct {
	MeshPicks      bool `json:"meshPicks"`      // off: drop mesh_interaction
	MeshVisibility bool `json:"meshVisibility"` // off: drop mesh_visibility
	BoundingBox    bool `json:"boundingBox"`    // off: strip mesh_visibility.bounds
	HoverDwell     bool `json:"hoverDwell"`     // off: drop hover_dwell
	ResourceSample bool `json:"resourceSample"` // off: drop resource_sample
	Gaze           bool `json:"gaze"`           // off: strip camera_sample.hitPoint and hitMesh
	CaptureErrors  bool `json:"captureErrors"`  // off: drop runtime_error
}

// DefaultChannels returns the defaults: only meshPicks is on.
func DefaultChannels() Channels { return Channels{MeshPicks: true} }

// AllChannels returns settings with every channel on.
func AllChannels() Channels {
	return Channels{MeshPicks: true, MeshVisibility: true, BoundingBox: true, HoverDwell: true,
		ResourceSample: true, Gaze: true, CaptureErrors: true}
}

// ChannelNames lists the channel names accepted by Set, in a stable order.
var ChannelNames = []string{"meshPicks", "meshVisibility", "boundingBox", "hoverDwell", "resourceSample", "gaze", "captureErrors"}

// Set turns the named channel on or off; ok is false for an unknown name.
func (c *Channels) Set(name string, on bool) (ok bool) {
	p := c.field(name)
	if p == nil {
		return false
	}
	*p = on
	return true
}

// Get reports the named channel's setting; ok is false for an unknown name.
func (c *Channels) Get(name string) (on, ok bool) {
	p := c.field(name)
	if p == nil {
		return false, false
	}
	return *p, true
}

func (c *Channels) field(name string) *bool {
	switch name {
	case "meshPicks":
		return &c.MeshPicks
	case "meshVisibility":
		return &c.MeshVisibility
	case "boundingBox":
		return &c.BoundingBox
	case "hoverDwell":
		return &c.HoverDwell
	case "resourceSample":
		return &c.ResourceSample
	case "gaze":
		return &c.Gaze
	case "captureErrors":
		return &c.CaptureErrors
	}
	return nil
}

// Drops reports whether an event of type t is dropped (counted as filtered)
// under these settings.
func (c *Channels) Drops(t EventType) bool {
	switch t {
	case TypeMeshInteraction:
		return !c.MeshPicks
	case TypeMeshVisibility:
		return !c.MeshVisibility
	case TypeHoverDwell:
		return !c.HoverDwell
	case TypeResourceSample:
		return !c.ResourceSample
	case TypeRuntimeError:
		return !c.CaptureErrors
	}
	return false
}

// Strip identifies a field removal made by gating; stripping counts nothing in
// the response but is visible in metrics.
type Strip uint8

const (
	StripBounds Strip = iota // mesh_visibility.bounds (boundingBox off)
	StripGaze                // camera_sample.hitPoint / hitMesh (gaze off)
	NumStrips
)

// String names the strip for metrics labels.
func (s Strip) String() string {
	switch s {
	case StripBounds:
		return "boundingBox"
	case StripGaze:
		return "gaze"
	}
	return "unknown"
}
