package main

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	sdk "github.com/uptimizr/edge/plugins/sdk/go"
)

func redactText(r *Redactor, s string) string {
	out, changed := r.Redact([]byte(s))
	if !changed {
		return s
	}
	return string(out)
}

func TestRules(t *testing.T) {
	r := NewRedactor(DefaultOptions())
	cases := []struct{ in, want string }{
		// e-mail
		{"contact jane.doe+shop@example.co.uk now", "contact [email] now"},
		{"mailto:a_b-c%d@sub.example.com", "mailto:[email]"},
		{"?email=jane%40example.com&x=1", "?email=[redacted]&x=1"}, // the parameter rule wins
		{"email=jane%40example.com", "email=[email]"},              // not a parameter: no ? & # ; first
		{"u=jane%40example.com", "u=[email]"},
		{"JANE@EXAMPLE.COM.", "[email]."},
		{"not an email: a@b", "not an email: a@b"},
		{"a@b.c", "a@b.c"},
		{"x@1.23", "x@1.23"},
		{"@example.com", "@example.com"},
		{"first.@x.io", "[email]"},
		// phone numbers
		{"call +1 (555) 123-4567 today", "call [phone] today"},
		{"+44 20 7946 0958", "[phone]"},
		{"+4915123456789", "[phone]"},
		{"+49-30-1234567", "[phone]"},
		{"(555) 123-4567", "[phone]"},
		{"030 1234567", "[phone]"},
		{"555.123.4567", "[phone]"},
		{"06 12 34 56 78", "[phone]"},
		{"tel=555-123-4567", "tel=[phone]"},
		{"order 1234567", "order 1234567"},                 // one run without separators or +
		{"on 2024-01-15 at noon", "on 2024-01-15 at noon"}, // a date
		{"15.01.2024", "15.01.2024"},
		{"pi 3.14159265", "pi 3.14159265"},
		{"12.345.678 units", "12.345.678 units"},
		{"555-1234", "[phone]"},
		{"555-123", "555-123"}, // 6 digits
		{"v1.2.3", "v1.2.3"},
		{"+1 555", "+1 555"},
		{"1 2 3 4 5 6 7", "1 2 3 4 5 6 7"},
		{"id-555-123-4567", "id-555-123-4567"},
		{"1234567890123456789", "1234567890123456789"},
		// IP addresses
		{"from 192.168.1.20:8080", "from [ip]:8080"},
		{"http://10.0.0.1/x", "http://[ip]/x"},
		{"2001:db8:85a3::8a2e:370:7334 here", "[ip] here"},
		{"[::1]:3000", "[[ip]]:3000"},
		{"fe80::1ff:fe23:4567:890a", "[ip]"},
		{"::ffff:192.0.2.128", "[ip]"},
		{"1:2:3:4:5:6:7:8", "[ip]"},
		{"version 1.2.3.4.5", "version 1.2.3.4.5"},
		{"256.1.1.1", "256.1.1.1"},
		{"at 10:30:00", "at 10:30:00"},
		{"std::vector", "std::vector"},
		{"1.2.3.4a", "1.2.3.4a"},
		// payment cards
		{"card 4111 1111 1111 1111 exp", "card [card] exp"},
		{"4111-1111-1111-1111", "[card]"},
		{"5500005555555559", "[card]"},
		{"378282246310005", "[card]"},
		{"4111111111111112", "4111111111111112"},       // fails Luhn
		{"1111111111111117", "1111111111111117"},       // passes Luhn, not a card range
		{"ts 1795892682261 ok", "ts 1795892682261 ok"}, // a timestamp, starts with 1
		{"4111 1111 1111 1112", "4111 1111 1111 1112"},
		// bearer tokens and JWTs
		{"Authorization: Bearer abc123.def-456_ghi", "Authorization: Bearer [token]"},
		{"bearer ABCDEFGHIJKLMNOPQRSTUVWX", "bearer [token]"},
		{"Bearer of bad news", "Bearer of bad news"},
		{"bearer abcdefgh", "bearer abcdefgh"},
		{"t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "t=[token]"},
		// API keys and secrets
		{"key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "key [secret]"},
		{"rk_test_abcdefgh12", "[secret]"},
		{"AKIAIOSFODNN7EXAMPLE", "[secret]"},
		{"AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPL"},
		{"ghp_16C7e42F292c6912E7710c838347Ae178B4a", "[secret]"},
		{"xoxb-1234567890-abc", "[secret]"},
		{"AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "[secret]"},
		{"s=Zq3v9LkT2mWx8RpQ7nB4cYh6Jd1Fg5Ks0Ae", "s=[secret]"},
		{"sha 5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b", "sha 5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b"},
		{"id 768d1583-bec1-43a1-b54d-91d04a1a6453", "id 768d1583-bec1-43a1-b54d-91d04a1a6453"},
		{"MeshInstanceRendererComponentFactory2", "MeshInstanceRendererComponentFactory2"},
		{"abcdefghijklmnopqrstuvwxyzabcdefghij", "abcdefghijklmnopqrstuvwxyzabcdefghij"},
		// deny-listed parameters
		{"https://x.io/cb?code=1&access_token=abc&state=2", "https://x.io/cb?code=1&access_token=[redacted]&state=2"},
		{"/p?email=jöhn.müller@example.de&lang=dé", "/p?email=[redacted]&lang=dé"}, // a value goes whole, its non-ASCII characters too
		{"https://x.io/#Access_Token=abc.def&expires=3600", "https://x.io/#Access_Token=[redacted]&expires=3600"},
		{"/p?session=s1;sid=9 x", "/p?session=[redacted];sid=[redacted] x"},
		{"/p?keyboard=qwerty&key=", "/p?keyboard=qwerty&key="},
		{"token=abc at start", "token=abc at start"}, // no ? & # ; before the name
		// several in one text, non-ASCII kept whole
		{"é jane@example.com é +33 1 23 45 67 89 😀", "é [email] é [phone] 😀"},
		{"", ""},
		{"nothing to see", "nothing to see"},
	}
	for _, c := range cases {
		if got := redactText(r, c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestOptions(t *testing.T) {
	const in = "a@b.io, +44 20 7946 0958, 10.0.0.1, 4111111111111111, Bearer abc123def456, AKIAIOSFODNN7EXAMPLE, ?token=x"
	for _, c := range []struct {
		off  func(*Options)
		kept string
	}{
		{func(o *Options) { o.Emails = false }, "a@b.io"},
		{func(o *Options) { o.Phones = false }, "+44 20 7946 0958"},
		{func(o *Options) { o.IPs = false }, "10.0.0.1"},
		{func(o *Options) { o.Cards = false }, "4111111111111111"},
		{func(o *Options) { o.Tokens = false }, "abc123def456"},
		{func(o *Options) { o.Secrets = false }, "AKIAIOSFODNN7EXAMPLE"},
		{func(o *Options) { o.Params = false }, "token=x"},
	} {
		o := DefaultOptions()
		c.off(&o)
		got := redactText(NewRedactor(o), in)
		if !strings.Contains(got, c.kept) {
			t.Errorf("with a rule off, %q should stay: %q", c.kept, got)
		}
		if n := strings.Count(got, "["); n != 6 {
			t.Errorf("with one rule off, %d markers: %q", n, got)
		}
	}
	all := redactText(NewRedactor(DefaultOptions()), in)
	if want := "[email], [phone], [ip], [card], Bearer [token], [secret], ?token=[redacted]"; all != want {
		t.Errorf("all rules: %q", all)
	}
}

func TestTruncateUTF16(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 3, "abc"}, {"abcd", 3, "abc"}, {"éé", 1, "é"}, {"a😀", 2, "a"}, {"a😀", 3, "a😀"}, {"中文字", 2, "中文"},
	} {
		if got := string(truncateUTF16([]byte(c.in), c.max)); got != c.want {
			t.Errorf("truncate(%q, %d) = %q", c.in, c.max, got)
		}
	}
}

func TestRedactOutputStaysValidUTF8(t *testing.T) {
	r := NewRedactor(DefaultOptions())
	in := strings.Repeat("ü a@b.io 中 +1 555 123 4567 😀 ", 50)
	out, changed := r.Redact([]byte(in))
	if !changed || !utf8.Valid(out) {
		t.Fatalf("changed %v, valid %v", changed, utf8.Valid(out))
	}
}

func TestConfigure(t *testing.T) {
	defer func() { redactor = NewRedactor(DefaultOptions()) }()
	for _, c := range []struct {
		config string
		code   int32 // 0 = accepted
	}{
		{`{}`, 0},
		{`{"redactPhones":false,"redactEmails":null}`, 0},
		{`{"denyParams":["Token","x[]"],"extraDenyParams":["my_key"]}`, 0},
		{`{"denyParams":null}`, 0},
		{`{"redactPhones":"no"}`, codeWrongType},
		{`{"colour":true}`, codeUnknownOption},
		{`{"denyParams":"token"}`, codeWrongType},
		{`{"denyParams":[1]}`, codeWrongType},
		{`{"denyParams":["bad name"]}`, codeBadParamName},
		{`{"extraDenyParams":[""]}`, codeBadParamName},
		{`[]`, codeWrongType},
	} {
		err := configure([]byte(c.config))
		var ce *sdk.Error
		switch {
		case c.code == 0 && err != nil:
			t.Errorf("%s: %v", c.config, err)
		case c.code != 0 && (!errors.As(err, &ce) || ce.Code != c.code):
			t.Errorf("%s: %v, want code %d", c.config, err, c.code)
		}
	}
	if err := configure([]byte(`{"denyParams":["Token"],"extraDenyParams":["my_key"],"redactPhones":false}`)); err != nil {
		t.Fatal(err)
	}
	if got := redactText(redactor, "?token=1&my_key=2&key=3 +44 20 7946 0958"); got != "?token=[redacted]&my_key=[redacted]&key=3 +44 20 7946 0958" {
		t.Errorf("configured: %q", got)
	}
	if err := configure([]byte(`{not json`)); err == nil {
		t.Error("malformed config accepted")
	}
}
