package core

import (
	"strings"
	"testing"
)

var uaCases = []struct {
	name, ua, browser, os string
}{
	// Chrome
	{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "chrome", "windows"},
	{"chrome macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "chrome", "macos"},
	{"chrome linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "chrome", "linux"},
	{"chrome android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", "chrome", "android"},
	{"chrome ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1", "chrome", "ios"},
	{"chrome chromeos", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "chrome", "chromeos"},
	{"android webview", "Mozilla/5.0 (Linux; Android 13; SM-S918B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36", "chrome", "android"},
	{"cubot phone is not a bot", "Mozilla/5.0 (Linux; Android 11; CUBOT KINGKONG 5 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/110.0.0.0 Mobile Safari/537.36", "chrome", "android"},
	// Edge
	{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", "edge", "windows"},
	{"edge legacy", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582", "edge", "windows"},
	{"edge android", "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36 EdgA/124.0.2478.50", "edge", "android"},
	{"edge ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/124.2478.50 Mobile/15E148 Safari/605.1.15", "edge", "ios"},
	// Opera
	{"opera windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0", "opera", "windows"},
	{"opera android", "Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 OPR/81.1.4292.78446", "opera", "android"},
	{"opera mini presto", "Opera/9.80 (J2ME/MIDP; Opera Mini/5.1.21214/28.2725; U; ru) Presto/2.8.119 Version/11.10", "opera", "other"},
	// Samsung Internet
	{"samsung android", "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36", "samsung", "android"},
	// Firefox
	{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "firefox", "windows"},
	{"firefox macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0", "firefox", "macos"},
	{"firefox linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "firefox", "linux"},
	{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "firefox", "android"},
	{"firefox ios", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15", "firefox", "ios"},
	// Safari
	{"safari macos", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15", "safari", "macos"},
	{"safari iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1", "safari", "ios"},
	{"safari ipad", "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1", "safari", "ios"},
	// Others
	{"android stock browser", "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", "other", "android"},
	{"ie11", "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko", "other", "windows"},
	{"ios in-app webview", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/458.0.0.30.107]", "other", "ios"},
	// Bots, headless browsers, HTTP clients
	{"googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "other"},
	{"googlebot smartphone", "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.60 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "android"},
	{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", "other"},
	{"baiduspider", "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "bot", "other"},
	{"yahoo slurp", "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)", "bot", "other"},
	{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36", "bot", "linux"},
	{"facebook crawler", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot", "other"},
	{"curl", "curl/8.5.0", "bot", "other"},
	{"wget", "Wget/1.21.4", "bot", "other"},
	{"go", "Go-http-client/2.0", "bot", "other"},
	{"python requests", "python-requests/2.31.0", "bot", "other"},
	{"node-fetch", "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "bot", "other"},
	{"axios", "axios/1.6.8", "bot", "other"},
	{"okhttp", "okhttp/4.12.0", "bot", "other"},
	{"apache httpclient", "Apache-HttpClient/4.5.14 (Java/17.0.10)", "bot", "other"},
	// Degenerate input
	{"empty", "", "other", "other"},
	{"garbage", "\x00\xff\xfe}{<script>alert(1)</script>", "other", "other"},
	{"unicode", "Браузер/1.0 (Ünïcödé; 日本語)", "other", "other"},
	{"microsoft is not chromeos", "Microsoft Office/16.0 (Microsoft Outlook 16.0.17029; Pro)", "other", "other"},
	{"upper case", "MOZILLA/5.0 (WINDOWS NT 10.0) FIREFOX/125.0", "firefox", "windows"},
	{"10KB padded chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 " + strings.Repeat("x", 10<<10), "chrome", "windows"},
	// Tokens past the scan limit are not looked at.
	{"10KB token past limit", strings.Repeat("a", 10<<10) + " Firefox/125.0 (Windows NT 10.0)", "other", "other"},
	{"token straddling limit", strings.Repeat("a", maxUAScan-4) + "Firefox/125.0", "other", "other"},
	{"token ending at limit", strings.Repeat("a", maxUAScan-8) + "Firefox/", "firefox", "other"},
}

func TestClassifyUA(t *testing.T) {
	if len(uaCases) < 25 {
		t.Fatalf("table has only %d cases", len(uaCases))
	}
	for _, c := range uaCases {
		b, o := ClassifyUA([]byte(c.ua))
		if b != c.browser || o != c.os {
			t.Errorf("%s: ClassifyUA = (%q, %q), want (%q, %q)", c.name, b, o, c.browser, c.os)
		}
	}
}

func TestClassifyUANilAndInputUntouched(t *testing.T) {
	if b, o := ClassifyUA(nil); b != "other" || o != "other" {
		t.Errorf("nil: (%q, %q)", b, o)
	}
	ua := []byte("Mozilla/5.0 (Windows NT 10.0) Firefox/125.0")
	orig := string(ua)
	ClassifyUA(ua)
	if string(ua) != orig {
		t.Errorf("ClassifyUA modified its input: %q", ua)
	}
}

func TestClassifyUAZeroAllocs(t *testing.T) {
	uas := make([][]byte, len(uaCases))
	for i, c := range uaCases {
		uas[i] = []byte(c.ua)
	}
	var sink string
	allocs := testing.AllocsPerRun(200, func() {
		for _, ua := range uas {
			b, o := ClassifyUA(ua)
			sink = b + o[:0]
		}
	})
	_ = sink
	if allocs != 0 {
		t.Fatalf("ClassifyUA allocates %.1f times per table pass", allocs)
	}
}

func BenchmarkClassifyUA(b *testing.B) {
	for _, c := range []struct{ name, ua string }{
		{"Chrome", uaCases[0].ua},
		{"SafariIOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"},
		{"Bot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{"10KB", strings.Repeat("x", 10<<10)},
	} {
		ua := []byte(c.ua)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ClassifyUA(ua)
			}
		})
	}
}

func TestClassifyUAEveryBotToken(t *testing.T) {
	for _, tok := range botTokens {
		ua := "Mozilla/5.0 (X11; Linux x86_64) " + strings.ToUpper(tok) + "1.0"
		if b, _ := ClassifyUA([]byte(ua)); b != "bot" {
			t.Errorf("%q: browser %q, want bot", ua, b)
		}
	}
}
