package core

import "math"

// Query holds the shared parameters of the read API (docs/API.md, "Read API (aggregates)"). The project
// is never a parameter: it always comes from the key.
type Query struct {
	Since, Until int64  // epoch ms, inclusive; Until is math.MaxInt64 when open
	Scene        string // "" = every scene
	Session      string // "" = every session
	Source       string // "" = every input source (the routes that take one)
	Limit        int    // 1–1000
}

// Region is an axis-aligned box of scene space: minX, minY, minZ, maxX,
// maxY, maxZ. A nil *Region holds everything.
type Region [6]float64

// Holds reports whether p lies in the box, bounds included.
func (r *Region) Holds(p [3]float64) bool {
	return r == nil || p[0] >= r[0] && p[0] <= r[3] && p[1] >= r[1] && p[1] <= r[4] && p[2] >= r[2] && p[2] <= r[5]
}

// DefaultQuery is the query with no filters and the default limit.
func DefaultQuery() Query { return Query{Since: 0, Until: math.MaxInt64, Limit: 100} }

// Rows of the read API, in the shapes of the reference collector.
type (
	EventCountRow struct {
		EventType string `json:"event_type"`
		Count     int64  `json:"count"`
	}
	TimeseriesRow struct {
		Bucket int64    `json:"bucket"`
		Events int64    `json:"events"`
		AvgFPS *float64 `json:"avg_fps"`
	}
	SessionRow struct {
		SessionID string `json:"session_id"`
		VisitorID string `json:"visitor_id"`
		Events    int64  `json:"events"`
		StartedAt string `json:"started_at"`
		EndedAt   string `json:"ended_at"`
	}
	SceneRow struct {
		SceneID  string `json:"scene_id"`
		Events   int64  `json:"events"`
		LastSeen string `json:"last_seen"`
	}
	MeshCountRow struct {
		Mesh  string `json:"mesh"`
		Count int64  `json:"count"`
	}
	MeshDwellRow struct {
		Mesh              string  `json:"mesh"`
		VisibleMs         float64 `json:"visible_ms"`
		CenteredMs        float64 `json:"centered_ms"`
		MaxScreenFraction float64 `json:"max_screen_fraction"`
		Samples           int64   `json:"samples"`
	}
	HoverDwellRow struct {
		Mesh       string  `json:"mesh"`
		DwellMs    float64 `json:"dwell_ms"`
		MaxDwellMs float64 `json:"max_dwell_ms"`
		Episodes   int64   `json:"episodes"`
	}
	PerfRow struct {
		Samples int64    `json:"samples"`
		AvgFPS  *float64 `json:"avg_fps"`
		MinFPS  *float64 `json:"min_fps"`
		P50FPS  *float64 `json:"p50_fps"`
	}
	ResourceRow struct {
		Samples          int64    `json:"samples"`
		AvgJSHeapBytes   *float64 `json:"avg_js_heap_bytes"`
		MaxJSHeapBytes   *float64 `json:"max_js_heap_bytes"`
		AvgTriangles     *float64 `json:"avg_triangles"`
		MaxTriangles     *float64 `json:"max_triangles"`
		AvgVertices      *float64 `json:"avg_vertices"`
		MaxVertices      *float64 `json:"max_vertices"`
		AvgTextureBytes  *float64 `json:"avg_texture_bytes"`
		MaxTextureBytes  *float64 `json:"max_texture_bytes"`
		AvgGeometryBytes *float64 `json:"avg_geometry_bytes"`
		MaxGeometryBytes *float64 `json:"max_geometry_bytes"`
	}
	PointerCellRow struct {
		GX    int   `json:"gx"`
		GY    int   `json:"gy"`
		Count int64 `json:"count"`
	}
	GazeVoxelRow struct {
		VX    int64 `json:"vx"`
		VY    int64 `json:"vy"`
		VZ    int64 `json:"vz"`
		Count int64 `json:"count"`
	}
	InteractionSourceRow struct {
		EventType string `json:"event_type"`
		Source    string `json:"source"`
		Count     int64  `json:"count"`
		Sessions  int64  `json:"sessions"`
	}
	XRAbandonmentRow struct {
		SessionID      string `json:"session_id"`
		Events         int64  `json:"events"`
		XRInteractions int64  `json:"xr_interactions"`
		StartedAt      string `json:"started_at"`
		EndedAt        string `json:"ended_at"`
	}
	XRRotationRow struct {
		SessionID     string  `json:"session_id"`
		Samples       int64   `json:"samples"`
		AvgTurnRad    float64 `json:"avg_turn_rad"`
		MaxTurnRad    float64 `json:"max_turn_rad"`
		TotalTurnRad  float64 `json:"total_turn_rad"`
		RapidSegments int64   `json:"rapid_segments"`
	}
	VoxelStatsRow struct {
		CellSize float64 `json:"cellSize"`
		Cells    int64   `json:"cells"`
		Hits     int64   `json:"hits"`
	}
	PositionCellRow struct {
		GX    int64   `json:"gx"`
		GZ    int64   `json:"gz"`
		AvgY  float64 `json:"avg_y"`
		Count int64   `json:"count"`
	}
	TrajectoryRow struct {
		TS int64   `json:"ts"`
		X  float64 `json:"x"`
		Y  float64 `json:"y"`
		Z  float64 `json:"z"`
	}
	PathPointRow struct {
		SessionID string `json:"session_id"`
		TS        int64  `json:"ts"`
		GX        int64  `json:"gx"`
		GZ        int64  `json:"gz"`
	}
	ClickRayRow struct {
		CamVX   int64   `json:"cam_vx"`
		CamVY   int64   `json:"cam_vy"`
		CamVZ   int64   `json:"cam_vz"`
		OriginX float64 `json:"origin_x"`
		OriginY float64 `json:"origin_y"`
		OriginZ float64 `json:"origin_z"`
		HitVX   int64   `json:"hit_vx"`
		HitVY   int64   `json:"hit_vy"`
		HitVZ   int64   `json:"hit_vz"`
		HitX    float64 `json:"hit_x"`
		HitY    float64 `json:"hit_y"`
		HitZ    float64 `json:"hit_z"`
		Mesh    string  `json:"mesh"`
		Count   int64   `json:"count"`
	}
	FlowRow struct {
		AzimuthBin   int      `json:"azimuth_bin"`
		ElevationBin int      `json:"elevation_bin"`
		Mesh         string   `json:"mesh"`
		Count        int64    `json:"count"`
		OriginVX     *int64   `json:"origin_vx,omitempty"`
		OriginVY     *int64   `json:"origin_vy,omitempty"`
		OriginVZ     *int64   `json:"origin_vz,omitempty"`
		OriginX      *float64 `json:"origin_x,omitempty"`
		OriginY      *float64 `json:"origin_y,omitempty"`
		OriginZ      *float64 `json:"origin_z,omitempty"`
	}
	FunnelStepRow struct {
		Step     int   `json:"step"`
		Sessions int64 `json:"sessions"`
	}
	NavigationRow struct {
		SessionID      string  `json:"session_id"`
		Segments       int64   `json:"segments"`
		TotalDistance  float64 `json:"total_distance"`
		ActiveSegments int64   `json:"active_segments"`
		ActiveDistance float64 `json:"active_distance"`
	}
	CapabilityChangeRow struct {
		Kind    string `json:"kind"`
		From    string `json:"from"`
		To      string `json:"to"`
		Changes int64  `json:"changes"`
	}
	CameraDistanceRow struct {
		Bucket int64 `json:"bucket"`
		Count  int64 `json:"count"`
	}
	XRSourceRow struct {
		Source       string `json:"source"`
		Interactions int64  `json:"interactions"`
		Sessions     int64  `json:"sessions"`
	}
	MeshKindRow struct {
		Mesh  string `json:"mesh"`
		Kind  string `json:"kind"`
		Count int64  `json:"count"`
	}
	MeshSourceRow struct {
		Mesh   string `json:"mesh"`
		Source string `json:"source"`
		Count  int64  `json:"count"`
	}
	MeshTrendRow struct {
		Mesh   string `json:"mesh"`
		Bucket int64  `json:"bucket"`
		Count  int64  `json:"count"`
	}
	DeadClickRow struct {
		TotalClicks int64 `json:"total_clicks"`
		DeadClicks  int64 `json:"dead_clicks"`
	}
	RageClickRow struct {
		SessionID string `json:"session_id"`
		Mesh      string `json:"mesh"`
		Bucket    int64  `json:"bucket"`
		Clicks    int64  `json:"clicks"`
	}
	InputActionRow struct {
		Action string `json:"action"`
		Source string `json:"source"`
		Count  int64  `json:"count"`
	}
	CameraGestureRow struct {
		Kind     string  `json:"kind"`
		Gestures int64   `json:"gestures"`
		TotalMs  float64 `json:"total_ms"`
		AvgMs    float64 `json:"avg_ms"`
		MaxMs    float64 `json:"max_ms"`
	}
	PerfDistributionRow struct {
		Sessions int64    `json:"sessions"`
		Samples  *int64   `json:"samples"`
		P05FPS   *float64 `json:"p05_fps"`
		P50FPS   *float64 `json:"p50_fps"`
		P95FPS   *float64 `json:"p95_fps"`
	}
	FPSHistogramRow struct {
		Bucket   int64 `json:"bucket"`
		Sessions int64 `json:"sessions"`
	}
	FrameTimeRow struct {
		Sessions int64    `json:"sessions"`
		Samples  *int64   `json:"samples"`
		P50Ms    *float64 `json:"p50_ms"`
		P95Ms    *float64 `json:"p95_ms"`
	}
	JankRow struct {
		Sessions        int64    `json:"sessions"`
		TotalLongFrames *int64   `json:"total_long_frames"`
		MedianRate      *float64 `json:"median_rate"`
		WorstDecileRate *float64 `json:"worst_decile_rate"`
	}
	PerfByDeviceRow struct {
		Engine   string  `json:"engine"`
		IsMobile string  `json:"is_mobile"`
		Renderer string  `json:"renderer"`
		Browser  string  `json:"browser"`
		OS       string  `json:"os"`
		Sessions int64   `json:"sessions"`
		Samples  int64   `json:"samples"`
		P50FPS   float64 `json:"p50_fps"`
	}
	PerfBySceneRow struct {
		SceneID  string  `json:"scene_id"`
		Sessions int64   `json:"sessions"`
		Samples  int64   `json:"samples"`
		P50FPS   float64 `json:"p50_fps"`
	}
	ResourcePercentileRow struct {
		Sessions        int64    `json:"sessions"`
		Samples         *int64   `json:"samples"`
		P50JSHeapBytes  *float64 `json:"p50_js_heap_bytes"`
		P95JSHeapBytes  *float64 `json:"p95_js_heap_bytes"`
		P50TextureBytes *float64 `json:"p50_texture_bytes"`
		P95TextureBytes *float64 `json:"p95_texture_bytes"`
		P50Triangles    *float64 `json:"p50_triangles"`
		P95Triangles    *float64 `json:"p95_triangles"`
	}
	StabilityRow struct {
		ContextLosses int64 `json:"context_losses"`
		CompileStalls int64 `json:"compile_stalls"`
		Incidents     int64 `json:"incidents"`
	}
	RenderScaleRow struct {
		Samples           int64    `json:"samples"`
		AvgFPS            *float64 `json:"avg_fps"`
		P50FPS            *float64 `json:"p50_fps"`
		AvgRenderScale    *float64 `json:"avg_render_scale"`
		P50RenderScale    *float64 `json:"p50_render_scale"`
		DownscaledSamples *int64   `json:"downscaled_samples"`
		ScaleSamples      *int64   `json:"scale_samples"`
	}
	CompileStallRow struct {
		Phase   string  `json:"phase"`
		Stalls  int64   `json:"stalls"`
		TotalMs float64 `json:"total_ms"`
		AvgMs   float64 `json:"avg_ms"`
		MaxMs   float64 `json:"max_ms"`
	}
	GraphicsDiagnosticRow struct {
		Severity  string `json:"severity"`
		Category  string `json:"category"`
		Backend   string `json:"backend"`
		Incidents int64  `json:"incidents"`
	}
	RenderingTechnologyRow struct {
		API             string `json:"api"`
		Backend         string `json:"backend"`
		APIVersion      string `json:"api_version"`
		ShadingLanguage string `json:"shading_language"`
		Sessions        int64  `json:"sessions"`
	}
	CameraCellRow struct {
		AzimuthBin   int   `json:"azimuth_bin"`
		ElevationBin int   `json:"elevation_bin"`
		Count        int64 `json:"count"`
	}
)

// SessionMetaRow is GET /api/v1/sessions/:id/meta: the session's summary and
// what its session_start said of the device, scene, user and connector
// (null when absent).
//
// It carries the reference's own keys too (sessionId, startedAt), which its
// dashboard reads.
type SessionMetaRow struct {
	SessionIDRef string `json:"sessionId"`
	StartedAtRef string `json:"startedAt"`

	SessionID string         `json:"session_id"`
	VisitorID string         `json:"visitor_id"`
	Events    int64          `json:"events"`
	StartedAt string         `json:"started_at"`
	EndedAt   string         `json:"ended_at"`
	Scenes    []string       `json:"scenes"`
	Device    map[string]any `json:"device"`
	Scene     map[string]any `json:"scene"`
	User      map[string]any `json:"user"`
	Connector map[string]any `json:"connector"`
	Graphics  map[string]any `json:"graphics"`
}
