package gen

// The world the generated sessions live in: a few customer sites (each a 3D
// app built on one connector, with its scenes and meshes) and the devices
// their visitors bring. Shapes and names follow the sample fixtures.

// scene is one 3D scene of a site.
type scene struct {
	id          string // sceneId
	description string // session_start.scene.description
	path        string // URL path of the page showing it
	meshCount   int    // typical meshCount
	target      [3]float64
	radius      float64 // typical camera distance from target
	meshes      []string
	assets      []string // relative asset paths loaded by the scene
}

// site is a customer app: one connector, a few scenes, its own custom events.
type site struct {
	origin      string // scheme://host of the app
	title       string // pageMeta.title
	cdn         string // origin of its assets
	connector   string
	version     string // connector version
	handedness  string // coordinate system
	upAxis      string
	unitScale   float64
	sdkVersion  string
	cameraType  string
	cameraName  string
	custom      customKind
	customNames []string
	scenes      []scene
}

// customKind selects the props a site puts on its custom events.
type customKind uint8

const (
	customShop customKind = iota
	customMuseum
	customGame
	customRealty
)

var sites = []site{
	{
		origin: "https://shop.example.com", title: "Configure your car", cdn: "https://cdn.example.com",
		connector: "babylon", version: "9.13.0", handedness: "left", upAxis: "y", unitScale: 1, sdkVersion: "0.5.0",
		cameraType: "arc-rotate", cameraName: "mainCamera",
		custom: customShop, customNames: []string{"color_selected", "add_to_cart", "ar_launch", "share_clicked", "tour_step"},
		scenes: []scene{
			{id: "configurator", description: "product-configurator", path: "/configurator/model-x", meshCount: 170, radius: 7.5,
				meshes: []string{"car_body", "wheel_fl", "wheel_fr", "wheel_rl", "wheel_rr", "door_left", "door_right", "spoiler", "headlight_l", "headlight_r", "seat_driver", "dashboard", "floor"},
				assets: []string{"models/model-x.glb", "textures/studio_env.env", "textures/paint_flakes.ktx2"}},
			{id: "showroom", description: "showroom", path: "/showroom", meshCount: 240, target: [3]float64{0, 1, 0}, radius: 11,
				meshes: []string{"car_body", "spoiler", "door_left", "floor", "wall_north", "lamp", "display_case_3", "wheel_fl"},
				assets: []string{"models/showroom.glb", "models/model-x.glb", "textures/showroom_lightmap.ktx2"}},
		},
	},
	{
		origin: "https://museum.example.org", title: "Visite virtuelle — Musée des Arts", cdn: "https://museum.example.org/static",
		connector: "three", version: "0.170.0", handedness: "right", upAxis: "y", unitScale: 1, sdkVersion: "0.5.0",
		cameraType: "free", cameraName: "PerspectiveCamera",
		custom: customMuseum, customNames: []string{"artwork_opened", "audio_guide_play", "room_entered"},
		scenes: []scene{
			{id: "lobby", description: "museum entrance hall", path: "/tour/lobby", meshCount: 95, target: [3]float64{0, 1.6, 0}, radius: 6,
				meshes: []string{"floor", "lamp", "chair_07", "reception_desk", "door_main", "wall_north"},
				assets: []string{"scenes/lobby.glb", "env/hall_2k.hdr"}},
			{id: "gallery", description: "impressionist gallery", path: "/tour/gallery", meshCount: 130, target: [3]float64{0, 1.6, -2}, radius: 5,
				meshes: []string{"painting_mona", "painting_starry_night", "display_case_3", "sculpture_david", "wall_north", "floor", "lamp", "chair_07"},
				assets: []string{"scenes/gallery.glb", "textures/paintings_atlas.ktx2"}},
			{id: "hall:east", description: "east hall, sculptures", path: "/tour/east-hall", meshCount: 88, target: [3]float64{2, 1.2, 0}, radius: 8,
				meshes: []string{"sculpture_david", "pedestal_2", "floor", "skylight", "bench_4"},
				assets: []string{"scenes/east_hall.glb"}},
		},
	},
	{
		origin: "https://play.example.net", title: "Orbit Run", cdn: "https://play.example.net/assets",
		connector: "playcanvas", version: "2.3.1", handedness: "right", upAxis: "y", unitScale: 1, sdkVersion: "0.4.9",
		cameraType: "follow", cameraName: "FollowCam",
		custom: customGame, customNames: []string{"level_complete", "coin_collected", "player_died", "powerup"},
		scenes: []scene{
			{id: "menu", description: "main menu", path: "/games/orbit-run", meshCount: 30, target: [3]float64{0, 0, 0}, radius: 4,
				meshes: []string{"btn_play", "btn_settings", "logo", "planet"},
				assets: []string{"menu.glb", "fonts/atlas.png"}},
			{id: "level-1", description: "level 1", path: "/games/orbit-run/play", meshCount: 410, target: [3]float64{0, 0.5, 0}, radius: 9,
				meshes: []string{"player", "crate_12", "coin_03", "platform_a", "enemy_drone_2", "door_exit"},
				assets: []string{"levels/level-1.glb", "audio/theme.ogg", "textures/level1_atlas.basis"}},
			{id: "level-2", description: "level 2", path: "/games/orbit-run/play", meshCount: 520, target: [3]float64{0, 0.5, 0}, radius: 9,
				meshes: []string{"player", "crate_07", "coin_11", "platform_b", "enemy_drone_5", "lava_pit", "door_exit"},
				assets: []string{"levels/level-2.glb", "textures/level2_atlas.basis"}},
		},
	},
	{
		origin: "https://homes.example.com", title: "3-room apartment, 84 m² · Berlin-Mitte", cdn: "https://homes.example.com/media",
		connector: "r3f", version: "9.0.4", handedness: "right", upAxis: "y", unitScale: 1, sdkVersion: "0.5.0",
		cameraType: "arc-rotate", cameraName: "OrbitControls",
		custom: customRealty, customNames: []string{"room_selected", "floorplan_opened", "contact_agent", "measure_tool"},
		scenes: []scene{
			{id: "apartment.living", description: "living room", path: "/listing/4412/tour", meshCount: 210, target: [3]float64{0, 1.2, 0}, radius: 5.5,
				meshes: []string{"sofa", "tv_wall", "window_south", "floor", "lamp", "coffee_table"},
				assets: []string{"tours/4412/living.glb", "tours/4412/living_lightmap.ktx2"}},
			{id: "apartment.kitchen", description: "kitchen", path: "/listing/4412/tour", meshCount: 180, target: [3]float64{1, 1.1, 0}, radius: 4.5,
				meshes: []string{"kitchen_island", "oven", "fridge", "window_east", "floor"},
				assets: []string{"tours/4412/kitchen.glb"}},
		},
	},
}

// device is a visitor's hardware, browser graphics stack and screen.
type device struct {
	weight                            int
	engine, vendor, renderer          string
	maxTexture, cores, memGb          int
	mobile, xr                        bool
	api, backend, apiVersion, shading string
	dpr                               float64
	width, height                     int // CSS viewport
	fps                               float64
	source                            string // primary input source
}

var devices = []device{
	{weight: 22, engine: "webgl2", vendor: "Google Inc.", renderer: "ANGLE (NVIDIA, NVIDIA GeForce RTX 3060 Direct3D11 vs_5_0 ps_5_0, D3D11)",
		maxTexture: 16384, cores: 12, memGb: 8, api: "webgl2", backend: "d3d11", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 1, width: 1920, height: 969, fps: 120, source: "mouse"},
	{weight: 18, engine: "webgl2", vendor: "Google Inc.", renderer: "ANGLE (Intel, Intel(R) UHD Graphics 620 Direct3D11 vs_5_0 ps_5_0, D3D11)",
		maxTexture: 16384, cores: 8, memGb: 8, api: "webgl2", backend: "d3d11", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 1.25, width: 1536, height: 730, fps: 42, source: "mouse"},
	{weight: 14, engine: "webgl2", vendor: "Google Inc. (Apple)", renderer: "ANGLE (Apple, ANGLE Metal Renderer: Apple M2, Unspecified Version)",
		maxTexture: 16384, cores: 8, memGb: 8, api: "webgl2", backend: "metal", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 2, width: 1512, height: 862, fps: 60, source: "mouse"},
	{weight: 8, engine: "webgpu", vendor: "apple", renderer: "metal-3",
		maxTexture: 16384, cores: 10, memGb: 16, api: "webgpu", backend: "metal", apiVersion: "WebGPU", shading: "wgsl",
		dpr: 2, width: 1728, height: 1001, fps: 120, source: "mouse"},
	{weight: 6, engine: "webgpu", vendor: "nvidia", renderer: "ampere",
		maxTexture: 16384, cores: 16, memGb: 8, api: "webgpu", backend: "vulkan", apiVersion: "WebGPU", shading: "wgsl",
		dpr: 1, width: 2560, height: 1313, fps: 144, source: "mouse"},
	{weight: 10, engine: "webgl2", vendor: "Qualcomm", renderer: "Adreno (TM) 650",
		maxTexture: 16384, cores: 8, memGb: 8, mobile: true, api: "webgl2", backend: "opengles", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 3, width: 412, height: 839, fps: 50, source: "touch"},
	{weight: 8, engine: "webgl2", vendor: "ARM", renderer: "Mali-G78",
		maxTexture: 8192, cores: 8, memGb: 4, mobile: true, api: "webgl2", backend: "opengles", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 2.625, width: 412, height: 783, fps: 38, source: "touch"},
	{weight: 9, engine: "webgl2", vendor: "Apple Inc.", renderer: "Apple GPU",
		maxTexture: 16384, cores: 6, memGb: 4, mobile: true, api: "webgl2", backend: "metal", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 3, width: 390, height: 664, fps: 60, source: "touch"},
	{weight: 2, engine: "webgl", vendor: "Google Inc.", renderer: "ANGLE (Intel, Intel(R) HD Graphics 4000 Direct3D9Ex vs_3_0 ps_3_0)",
		maxTexture: 8192, cores: 4, memGb: 4, api: "webgl", backend: "d3d9", apiVersion: "WebGL 1.0", shading: "glsl-es-1.0",
		dpr: 1, width: 1366, height: 657, fps: 24, source: "mouse"},
	{weight: 3, engine: "webgl2", vendor: "Qualcomm", renderer: "Adreno (TM) 740",
		maxTexture: 16384, cores: 8, memGb: 8, mobile: true, xr: true, api: "webgl2", backend: "opengles", apiVersion: "WebGL 2.0", shading: "glsl-es",
		dpr: 1, width: 1832, height: 1920, fps: 72, source: "xr-controller"},
}

var deviceWeightTotal = func() (n int) {
	for _, d := range devices {
		n += d.weight
	}
	return n
}()

var (
	languages = []string{"en-US", "en-US", "en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR", "zh-Hans-CN"}
	referrers = []string{"https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/", "https://t.co/", "https://news.example.net/article/3d-web"}
	plans     = []string{"free", "free", "pro", "team", "enterprise"}
	colors    = []string{"pearl-white", "midnight-blue", "red", "graphite", "racing-green"}
	utm       = []string{"?utm_source=newsletter&utm_medium=email&utm_campaign=spring", "?ref=homepage", "?variant=b", "?utm_source=google&utm_medium=cpc"}
)

// First and last names and mail domains for PII-looking values.
var (
	firstNames  = []string{"jane", "john", "maria", "li", "ahmed", "sofia", "lukas", "emma", "noah", "yuki"}
	lastNames   = []string{"doe", "smith", "garcia", "chen", "hassan", "rossi", "muller", "martin", "kim", "tanaka"}
	mailDomains = []string{"gmail.com", "outlook.com", "example.com", "mail.example.org", "web.de", "yahoo.co.jp"}
)

// Operational vocabulary for the rarer event types.
type diagnostic struct{ severity, category, message, code string }

// webglContextLoss is what a WebGL device reports where WebGPU loses its device.
var webglContextLoss = diagnostic{"warning", "context-loss", "WebGL context lost; waiting for restore", "CONTEXT_LOST_WEBGL"}

var diagnostics = []diagnostic{
	{"warning", "validation", "WebGL: INVALID_OPERATION: drawElements: no buffer is bound to enabled attribute", "GL_INVALID_OPERATION"},
	{"error", "shader-compile", "ERROR: 0:34: 'texture2DLodEXT' : no matching overloaded function found", "SHADER_COMPILE_FAILED"},
	{"info", "fallback", "WebGPU adapter unavailable, falling back to WebGL2", "FALLBACK_WEBGL2"},
	{"fatal", "device-lost", "GPUDevice was lost: reason 'unknown'", "DEVICE_LOST"},
	{"error", "out-of-memory", "Out of memory while allocating a 4096x4096 RGBA16F render target", "OUT_OF_MEMORY"},
	webglContextLoss,
	{"warning", "validation", "Texture size exceeds MAX_TEXTURE_SIZE, downscaled to 8192", "TEX_DOWNSCALED"},
}

type capability struct{ kind, from, to, reason string }

var capabilities = []capability{
	{"graphics-backend", "webgpu", "webgl2", "requestAdapter() returned null"},
	{"quality", "high", "medium", "sustained frame rate below 30 fps"},
	{"quality", "medium", "high", "frame rate recovered"},
	{"device-recovery", "lost", "restored", "context restored after GPU reset"},
	{"feature", "off", "on", "EXT_color_buffer_float available"},
	{"other", "", "battery-saver", "navigator.getBattery reports < 20%"},
}

type jsError struct{ kind, message, fn string }

var jsErrors = []jsError{
	{"error", "TypeError: Cannot read properties of undefined (reading 'position')", "updateHotspots"},
	{"error", "ReferenceError: envTexture is not defined", "applyEnvironment"},
	{"error", "RangeError: Maximum call stack size exceeded", "traverseNode"},
	{"unhandledrejection", "Error: Failed to load model: HTTP 404", "loadAsync"},
	{"unhandledrejection", "TypeError: NetworkError when attempting to fetch resource.", "fetchVariant"},
}

var contextLostReasons = []string{"GPU process was restarted", "too many active WebGL contexts", "driver reset (TDR)", "browser reclaimed GPU memory in background tab"}

type action struct{ action, code, source string }

var actions = []action{
	{"reset-view", "KeyR", "keyboard"},
	{"toggle-fullscreen", "KeyF", "keyboard"},
	{"next-step", "ArrowRight", "keyboard"},
	{"open-menu", "Escape", "keyboard"},
	{"jump", "Space", "keyboard"},
	{"jump", "Button0", "gamepad"},
	{"teleport", "Trigger", "xr-controller"},
	{"zoom-in", "Equal", "keyboard"},
}

var (
	gestureKinds  = []string{"orbit", "orbit", "orbit", "pan", "dolly", "zoom", "zoom", "roll", "fly", "navigate"}
	meshKinds     = []string{"hover", "hover", "pick", "pick", "click", "click", "drag", "select", "squeeze", "grab", "release", "teleport"}
	stallPhases   = []string{"shader", "shader", "pipeline", "material", "other"}
	endReasons    = []string{"unload", "unload", "unload", "unload", "unload", "hidden", "hidden", "hidden", "timeout", "manual"}
	desktopInputs = []string{"mouse", "mouse", "mouse", "mouse", "mouse", "mouse", "mouse", "mouse", "pen", "stylus"}
	bones         = []string{"spine_02", "hand_r", "head", "hinge"}
)
