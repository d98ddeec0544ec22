package edge

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func mustTrust(t testing.TB, s string) TrustProxy {
	t.Helper()
	tp, err := ParseTrustProxy(s)
	if err != nil {
		t.Fatalf("ParseTrustProxy(%q): %v", s, err)
	}
	return tp
}

func TestParseTrustProxy(t *testing.T) {
	good := map[string]string{ // input → String()
		"":                           "false",
		"false":                      "false",
		" FALSE ":                    "false",
		"0":                          "false",
		"true":                       "true",
		"True":                       "true",
		"1":                          "1",
		"3":                          "3",
		"+2":                         "2",
		"10.0.0.0/8":                 "10.0.0.0/8",
		"10.1.2.3":                   "10.1.2.3/32",
		"10.1.2.3/8":                 "10.0.0.0/8",
		"10.0.0.0/8, 192.168.0.0/16": "10.0.0.0/8,192.168.0.0/16",
		"2001:db8::/32,::1":          "2001:db8::/32,::1/128",
		"::ffff:10.0.0.0/104":        "10.0.0.0/8",
		"::ffff:10.0.0.1":            "10.0.0.1/32",
	}
	for in, want := range good {
		tp, err := ParseTrustProxy(in)
		if err != nil {
			t.Errorf("ParseTrustProxy(%q): %v", in, err)
			continue
		}
		if got := tp.String(); got != want {
			t.Errorf("ParseTrustProxy(%q).String() = %q, want %q", in, got, want)
		}
	}
	bad := []string{
		"-1", "-10", "99999999999999999999", "65537", "yes", "10.0.0.0/33", "10.0.0.0/8,",
		"10.0.0.0/8,,10.1.0.0/16", "300.0.0.0/8", "10.0.0.0/8 garbage", "fe80::1%eth0",
		"::ffff:10.0.0.0/64", "1.2.3.4:80", "localhost",
	}
	for _, in := range bad {
		if tp, err := ParseTrustProxy(in); err == nil {
			t.Errorf("ParseTrustProxy(%q) = %v, want error", in, tp)
		} else if !strings.Contains(err.Error(), "COLLECTOR_TRUST_PROXY") {
			t.Errorf("ParseTrustProxy(%q) error %q does not name the setting", in, err)
		}
	}
	if _, err := ParseTrustProxy("-1"); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative count: error %v should say negative", err)
	}
}

type clientIPCase struct {
	name, peer, xff, want string
}

func runClientIPCases(t *testing.T, setting string, cases []clientIPCase) {
	t.Helper()
	tp := mustTrust(t, setting)
	for _, c := range cases {
		var xff []byte
		if c.xff != "<nil>" {
			xff = []byte(c.xff)
		}
		got := tp.ClientIP(netip.MustParseAddr(c.peer), xff)
		if got != netip.MustParseAddr(c.want) {
			t.Errorf("%s / %s: ClientIP(%s, %q) = %v, want %s", setting, c.name, c.peer, c.xff, got, c.want)
		}
	}
}

func TestClientIPNever(t *testing.T) {
	for _, setting := range []string{"", "false", "0"} {
		runClientIPCases(t, setting, []clientIPCase{
			{"no xff", "203.0.113.9", "<nil>", "203.0.113.9"},
			{"spoofed xff ignored", "203.0.113.9", "1.1.1.1", "203.0.113.9"},
			{"mapped peer unmapped", "::ffff:203.0.113.9", "1.1.1.1", "203.0.113.9"},
			{"ipv6 peer", "2001:db8::9", "1.1.1.1, 2.2.2.2", "2001:db8::9"},
			{"zone dropped", "fe80::1%eth0", "", "fe80::1"},
		})
	}
}

func TestClientIPTrustAll(t *testing.T) {
	// "true" trusts every hop: whatever the client wrote first wins. This is by
	// design and only safe behind a proxy that overwrites X-Forwarded-For.
	runClientIPCases(t, "true", []clientIPCase{
		{"no xff", "10.0.0.1", "<nil>", "10.0.0.1"},
		{"empty xff", "10.0.0.1", "", "10.0.0.1"},
		{"single", "10.0.0.1", "198.51.100.7", "198.51.100.7"},
		{"left-most wins", "10.0.0.1", "198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"client-chosen first entry is believed", "10.0.0.1", "6.6.6.6, 198.51.100.7", "6.6.6.6"},
		{"garbage skipped to first valid", "10.0.0.1", "unknown, , 198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"all garbage → peer", "10.0.0.1", "unknown, not-an-ip", "10.0.0.1"},
		{"ipv6", "10.0.0.1", "2001:db8::7", "2001:db8::7"},
		{"mapped unmapped", "10.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"},
		{"v4 port", "10.0.0.1", "198.51.100.7:5678", "198.51.100.7"},
		{"v6 brackets port", "10.0.0.1", "[2001:db8::7]:443", "2001:db8::7"},
		{"v6 brackets", "10.0.0.1", "[2001:db8::7]", "2001:db8::7"},
		{"zone dropped", "10.0.0.1", "fe80::7%25eth0", "fe80::7"},
		{"tabs and spaces", "10.0.0.1", " \t198.51.100.7\t ", "198.51.100.7"},
	})
}

func TestClientIPHops(t *testing.T) {
	runClientIPCases(t, "1", []clientIPCase{
		{"no xff", "10.0.0.1", "<nil>", "10.0.0.1"},
		{"right-most", "10.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"},
		{"spoof prefix ignored", "10.0.0.1", "1.2.3.4, 5.6.7.8, 198.51.100.7", "198.51.100.7"},
		{"trailing blank skipped", "10.0.0.1", "198.51.100.7, ", "198.51.100.7"},
		{"garbage at chosen hop → peer", "10.0.0.1", "198.51.100.7, unknown", "10.0.0.1"},
		{"garbage left of chosen hop is irrelevant", "10.0.0.1", "garbage!!, 198.51.100.7", "198.51.100.7"},
		{"ipv6", "2001:db8::1", "2001:db8::7", "2001:db8::7"},
		{"mapped", "10.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"},
		{"port", "10.0.0.1", "198.51.100.7:1234", "198.51.100.7"},
		{"only blanks → peer", "10.0.0.1", " , ,", "10.0.0.1"},
	})
	runClientIPCases(t, "2", []clientIPCase{
		{"second from right", "10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"exactly two", "10.0.0.1", "198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"fewer than hops → left-most", "10.0.0.1", "198.51.100.7", "198.51.100.7"},
		{"garbage between → peer", "10.0.0.1", "198.51.100.7, bogus", "10.0.0.1"},
		{"multiple headers joined", "10.0.0.1", "6.6.6.6,198.51.100.7,10.0.0.2", "198.51.100.7"},
	})
	runClientIPCases(t, "10", []clientIPCase{
		{"beyond length → left-most", "10.0.0.1", "198.51.100.7, 10.0.0.3, 10.0.0.2", "198.51.100.7"},
	})
}

func TestClientIPCIDRs(t *testing.T) {
	runClientIPCases(t, "10.0.0.0/8, 2001:db8:ffff::/48", []clientIPCase{
		{"untrusted peer: xff ignored (spoofing)", "203.0.113.9", "10.0.0.5, 1.1.1.1", "203.0.113.9"},
		{"untrusted peer, no xff", "203.0.113.9", "<nil>", "203.0.113.9"},
		{"trusted peer, no xff", "10.0.0.1", "<nil>", "10.0.0.1"},
		{"trusted peer, empty xff", "10.0.0.1", "", "10.0.0.1"},
		{"one hop", "10.0.0.1", "198.51.100.7", "198.51.100.7"},
		{"skip trusted hops", "10.0.0.1", "198.51.100.7, 10.0.0.3, 10.0.0.2", "198.51.100.7"},
		{"client-supplied prefix ignored", "10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"},
		{"client forging a trusted hop", "10.0.0.1", "10.9.9.9, 198.51.100.7", "198.51.100.7"},
		{"all trusted → left-most", "10.0.0.1", "10.0.0.4, 10.0.0.3", "10.0.0.4"},
		{"mapped peer trusted", "::ffff:10.0.0.1", "198.51.100.7", "198.51.100.7"},
		{"mapped hop trusted", "10.0.0.1", "198.51.100.7, ::ffff:10.0.0.3", "198.51.100.7"},
		{"mapped client unmapped", "10.0.0.1", "::ffff:198.51.100.7", "198.51.100.7"},
		{"ipv6 proxy chain", "2001:db8:ffff::1", "2001:db8:1::7, 2001:db8:ffff::2", "2001:db8:1::7"},
		{"ipv6 outside range is the client", "2001:db8:ffff::1", "2001:db8:fffe::2", "2001:db8:fffe::2"},
		{"garbage hop → peer", "10.0.0.1", "198.51.100.7, unknown", "10.0.0.1"},
		{"garbage beyond client irrelevant", "10.0.0.1", "unknown, 198.51.100.7", "198.51.100.7"},
		{"space inside entry is garbage", "10.0.0.1", "198.51.100.7 10.0.0.3", "10.0.0.1"},
		{"blank entries skipped", "10.0.0.1", "198.51.100.7,, 10.0.0.3,", "198.51.100.7"},
		{"ports and brackets", "10.0.0.1", "[2001:db8::7]:443, 10.0.0.3:8080", "2001:db8::7"},
	})
	runClientIPCases(t, "10.0.0.1", []clientIPCase{
		{"single address: other peer untrusted", "10.0.0.2", "198.51.100.7", "10.0.0.2"},
		{"single address: trusted", "10.0.0.1", "198.51.100.7", "198.51.100.7"},
	})
}

func TestClientIPLongChain(t *testing.T) {
	var parts []string
	for i := 0; i < 100; i++ {
		parts = append(parts, fmt.Sprintf("10.0.%d.%d", i/256, i%256+1))
	}
	parts[0] = "198.51.100.7"
	xff := []byte(strings.Join(parts, ", "))
	peer := netip.MustParseAddr("10.255.0.1")
	for _, c := range []struct{ setting, want string }{
		{"true", "198.51.100.7"},
		{"1", "10.0.0.100"},
		{"50", "10.0.0.51"},
		{"100", "198.51.100.7"},
		{"1000", "198.51.100.7"},
		{"10.0.0.0/8", "198.51.100.7"},
		{"false", "10.255.0.1"},
	} {
		if got := mustTrust(t, c.setting).ClientIP(peer, xff); got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: got %v want %s", c.setting, got, c.want)
		}
	}
}

func TestParseHop(t *testing.T) {
	cases := map[string]string{ // "" = invalid
		"1.2.3.4":                "1.2.3.4",
		" 1.2.3.4 ":              "1.2.3.4",
		"1.2.3.4:5678":           "1.2.3.4",
		"1.2.3.4:65535":          "1.2.3.4",
		"1.2.3.4:65536":          "",
		"1.2.3.4:":               "",
		"1.2.3.4:x":              "",
		"1.2.3.4:123456":         "",
		"[::1]":                  "::1",
		"[::1]:80":               "::1",
		"[::1]80":                "",
		"[::1":                   "",
		"::1":                    "::1",
		"::ffff:1.2.3.4":         "1.2.3.4",
		"[::ffff:1.2.3.4]:1":     "1.2.3.4",
		"fe80::1%eth0":           "fe80::1",
		"2001:DB8::1":            "2001:db8::1",
		"unknown":                "",
		"example.com":            "",
		"example.com:80":         "",
		"1.2.3.4 5.6.7.8":        "",
		"01.2.3.4":               "",
		"256.1.1.1":              "",
		"1.2.3":                  "",
		"":                       "",
		"  ":                     "",
		strings.Repeat("1", 200): "",
	}
	for in, want := range cases {
		a, ok := parseHop([]byte(in))
		switch {
		case want == "" && ok:
			t.Errorf("parseHop(%q) = %v, want invalid", in, a)
		case want != "" && (!ok || a != netip.MustParseAddr(want)):
			t.Errorf("parseHop(%q) = %v, %v; want %s", in, a, ok, want)
		}
	}
}

// parseIPText must agree with netip.ParseAddr on zone-less input.
var parseIPTextSeeds = []string{
	"", ".", ":", "::", ":::", "1.2.3.4", "0.0.0.0", "255.255.255.255", "256.0.0.0",
	"1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "01.2.3.4", "1.2.3.04", "00.1.1.1",
	"::1", "1::", "1::1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::",
	"::1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8::", "1::2::3", "12345::", "fffff::1", "g::1",
	"::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:1.2.3.4",
	"1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3", "::ffff:01.2.3.4", "1.2.3.4::", "1:2:",
	":1:2::", "2001:db8::", "2001:DB8:0:0:0:0:0:1", "::ffff:256.1.1.1", "a:b:c:d:e:f:1.2.3.4",
	"1::1.2.3.4", "1:2:3:4:5:6:7:8.1.1.1", "::ffff:1.2.3.4.5", "1.2.3.4:80", " 1.2.3.4", "-1.2.3.4",
}

func checkParseIPText(t *testing.T, in string) {
	if strings.Contains(in, "%") {
		return // zones are cut off before parseIPText is called
	}
	want, err := netip.ParseAddr(in)
	got, ok := parseIPText([]byte(in))
	if ok != (err == nil) || (ok && got != want) {
		t.Fatalf("parseIPText(%q) = %v, %v; netip.ParseAddr = %v, %v", in, got, ok, want, err)
	}
}

func TestParseIPTextMatchesNetip(t *testing.T) {
	for _, s := range parseIPTextSeeds {
		checkParseIPText(t, s)
	}
	// Exhaustive over short strings of the relevant alphabet.
	alphabet := []byte("0f1.:9")
	var buf []byte
	var gen func(depth int)
	gen = func(depth int) {
		checkParseIPText(t, string(buf))
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			buf = append(buf, c)
			gen(depth - 1)
			buf = buf[:len(buf)-1]
		}
	}
	gen(6)
}

func FuzzParseIPText(f *testing.F) {
	for _, s := range parseIPTextSeeds {
		f.Add(s)
	}
	f.Fuzz(checkParseIPText)
}

func TestClientIPZeroAllocs(t *testing.T) {
	modes := []TrustProxy{
		mustTrust(t, "false"), mustTrust(t, "true"), mustTrust(t, "2"),
		mustTrust(t, "10.0.0.0/8,2001:db8::/32"),
	}
	peer := netip.MustParseAddr("::ffff:10.0.0.1")
	xffs := [][]byte{
		nil,
		[]byte("198.51.100.7, 10.0.0.3, 10.0.0.2"),
		[]byte("unknown, [2001:db8::7]:443, 1.2.3.4:80, fe80::1%eth0, , garbage"),
		[]byte("256.256.256.256, ::ffff:1.2.3, 1::2::3, 01.2.3.4"),
	}
	var sink netip.Addr
	allocs := testing.AllocsPerRun(500, func() {
		for _, m := range modes {
			for _, x := range xffs {
				sink = m.ClientIP(peer, x)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("ClientIP allocates %.1f times per pass", allocs)
	}
	_ = sink
}

func BenchmarkClientIP(b *testing.B) {
	peer := netip.MustParseAddr("10.0.0.1")
	xff := []byte("198.51.100.7, 10.0.0.3, 10.0.0.2")
	for _, c := range []struct{ name, setting string }{
		{"false", "false"}, {"true", "true"}, {"hops1", "1"}, {"cidrs", "10.0.0.0/8,192.168.0.0/16"},
	} {
		tp := mustTrust(b, c.setting)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tp.ClientIP(peer, xff)
			}
		})
	}
	b.Run("garbage", func(b *testing.B) {
		tp := mustTrust(b, "10.0.0.0/8")
		xff := []byte("198.51.100.7, not-an-address")
		b.ReportAllocs()
		for b.Loop() {
			tp.ClientIP(peer, xff)
		}
	})
}
