package core

// Browser families returned by ClassifyUA.
const (
	BrowserEdge    = "edge"
	BrowserOpera   = "opera"
	BrowserSamsung = "samsung"
	BrowserChrome  = "chrome"
	BrowserFirefox = "firefox"
	BrowserSafari  = "safari"
	BrowserBot     = "bot"
	BrowserOther   = "other"
)

// OS families returned by ClassifyUA. iPadOS is reported as "ios"; an iPad in
// desktop mode sends a Macintosh User-Agent and is reported as "macos".
const (
	OSWindows  = "windows"
	OSMacOS    = "macos"
	OSIOS      = "ios"
	OSAndroid  = "android"
	OSChromeOS = "chromeos"
	OSLinux    = "linux"
	OSOther    = "other"
)

// maxUAScan is how many leading bytes of a User-Agent ClassifyUA inspects. Real
// User-Agents are a few hundred bytes; the header is client-controlled, so the
// work per request is bounded regardless of its length.
const maxUAScan = 2048

// uaToken is one lowercase substring ClassifyUA looks for.
type uaToken uint8

const (
	tokBot      uaToken = iota // "bot", except in the phone brand "CUBOT"
	tokBotOther                // any entry of botTokens
	tokEdg
	tokEdge
	tokEdgA
	tokEdgiOS
	tokOPR
	tokOpera
	tokOPiOS
	tokSamsung
	tokChrome
	tokCriOS
	tokChromium
	tokFirefox
	tokFxiOS
	tokSafari
	tokIPhone
	tokIPad
	tokIPod
	tokAndroid
	tokCrOS
	tokWindows
	tokMacintosh
	tokMacOSX
	tokLinux
)

// botTokens mark crawlers, headless browsers and HTTP client libraries.
var botTokens = [...]string{
	"headlesschrome", "phantomjs", "lighthouse", "spider", "crawl", "slurp",
	"curl/", "wget", "go-http-client", "python-requests", "python-urllib",
	"aiohttp", "httpx", "node-fetch", "undici", "axios", "okhttp",
	"apache-httpclient", "java/", "libwww-perl", "scrapy", "postmanruntime",
	"facebookexternalhit", "ia_archiver",
}

var uaTokenText = [...]struct {
	tok  uaToken
	text string
}{
	{tokBot, "bot"},
	{tokEdg, "edg/"}, {tokEdge, "edge/"}, {tokEdgA, "edga/"}, {tokEdgiOS, "edgios/"},
	{tokOPR, "opr/"}, {tokOpera, "opera"}, {tokOPiOS, "opios/"},
	{tokSamsung, "samsungbrowser/"},
	{tokChrome, "chrome/"}, {tokCriOS, "crios/"}, {tokChromium, "chromium/"},
	{tokFirefox, "firefox/"}, {tokFxiOS, "fxios/"},
	{tokSafari, "safari/"},
	{tokIPhone, "iphone"}, {tokIPad, "ipad"}, {tokIPod, "ipod"},
	{tokAndroid, "android"},
	{tokCrOS, "cros "}, // "CrOS x86_64 …"; the space keeps "microsoft" from matching
	{tokWindows, "windows"},
	{tokMacintosh, "macintosh"}, {tokMacOSX, "mac os x"},
	{tokLinux, "linux"},
}

type uaPattern struct {
	text string
	tok  uaToken
}

// uaPatterns lists, for each lowercase first byte, the tokens starting with it.
var uaPatterns [256][]uaPattern

// uaLower maps ASCII upper case letters to lower case and every other byte to itself.
var uaLower [256]byte

func init() {
	for i := range uaLower {
		c := byte(i)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		uaLower[i] = c
	}
	add := func(text string, tok uaToken) {
		uaPatterns[text[0]] = append(uaPatterns[text[0]], uaPattern{text, tok})
	}
	for _, t := range uaTokenText {
		add(t.text, t.tok)
	}
	for _, t := range botTokens {
		add(t, tokBotOther)
	}
}

// ClassifyUA reduces a User-Agent to a coarse browser family and OS family. The
// results are the static strings of the Browser* and OS* constants; ClassifyUA
// does not allocate. Matching is an ASCII case-insensitive substring search over
// the first maxUAScan bytes, in one pass. An empty User-Agent gives ("other", "other").
func ClassifyUA(ua []byte) (browser, os string) {
	if len(ua) > maxUAScan {
		ua = ua[:maxUAScan]
	}
	var found uint64
	for i := range ua {
		for _, p := range uaPatterns[uaLower[ua[i]]] {
			if found&(1<<p.tok) != 0 || !hasPrefixFold(ua[i:], p.text) {
				continue
			}
			if p.tok == tokBot && i >= 2 && uaLower[ua[i-2]] == 'c' && uaLower[ua[i-1]] == 'u' {
				continue
			}
			found |= 1 << p.tok
		}
	}
	return uaBrowser(found), uaOS(found)
}

// hasPrefixFold reports whether b starts with the lowercase ASCII text, ignoring
// the case of b.
func hasPrefixFold(b []byte, text string) bool {
	if len(b) < len(text) {
		return false
	}
	for j := 1; j < len(text); j++ { // the first byte is matched by the caller
		if uaLower[b[j]] != text[j] {
			return false
		}
	}
	return true
}

func uaHas(found uint64, toks ...uaToken) bool {
	for _, t := range toks {
		if found&(1<<t) != 0 {
			return true
		}
	}
	return false
}

// uaBrowser picks the browser family. Order matters: Edge, Opera and Samsung
// Internet also carry "Chrome/", Chrome carries "Safari/", and the iOS builds of
// Chrome, Firefox and Edge (CriOS, FxiOS, EdgiOS) carry "Safari/" only.
func uaBrowser(found uint64) string {
	switch {
	case uaHas(found, tokBot, tokBotOther):
		return BrowserBot
	case uaHas(found, tokEdg, tokEdge, tokEdgA, tokEdgiOS):
		return BrowserEdge
	case uaHas(found, tokOPR, tokOpera, tokOPiOS):
		return BrowserOpera
	case uaHas(found, tokSamsung):
		return BrowserSamsung
	case uaHas(found, tokChrome, tokCriOS, tokChromium):
		return BrowserChrome
	case uaHas(found, tokFirefox, tokFxiOS):
		return BrowserFirefox
	case uaHas(found, tokSafari) && !uaHas(found, tokAndroid):
		// The pre-Chromium Android stock browser also says "Safari/"; it is not Safari.
		return BrowserSafari
	}
	return BrowserOther
}

// uaOS picks the OS family. iOS comes before macOS (iOS User-Agents say "like
// Mac OS X"), Android and Chrome OS before Linux.
func uaOS(found uint64) string {
	switch {
	case uaHas(found, tokIPhone, tokIPad, tokIPod):
		return OSIOS
	case uaHas(found, tokAndroid):
		return OSAndroid
	case uaHas(found, tokCrOS):
		return OSChromeOS
	case uaHas(found, tokWindows):
		return OSWindows
	case uaHas(found, tokMacintosh, tokMacOSX):
		return OSMacOS
	case uaHas(found, tokLinux):
		return OSLinux
	}
	return OSOther
}
