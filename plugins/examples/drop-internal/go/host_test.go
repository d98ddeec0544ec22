package main

import (
	"fmt"
	"testing"
)

func TestURLHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://shop.example.com/configurator/model-x": "shop.example.com",
		"https://Shop.Example.COM./x":                   "shop.example.com",
		"http://user:pw@intranet:8080/path?q=1":         "intranet",
		"https://[::1]:3000/":                           "::1",
		"http://[2001:DB8::1]":                          "2001:db8::1",
		"http://10.0.0.7:80":                            "10.0.0.7",
		"//cdn.example.com/a.js":                        "cdn.example.com",
		"app+custom://local.test#frag":                  "local.test",
		"https://a.example.com?x=http://b.com":          "a.example.com",
		"https://a.example.com#@evil.com":               "a.example.com",
		"https://evil.com\\@a.example.com":              "evil.com",
		"file:///tmp/x":                                 "",
		"shop.example.com/x":                            "",
		"mailto:a@b.com":                                "",
		"https://":                                      "",
		"https://[::1":                                  "",
		"":                                              "",
	} {
		host, ok := urlHost([]byte(in))
		if got := string(host); got != want || ok != (want != "") {
			t.Errorf("urlHost(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestMatching(t *testing.T) {
	defer func() { exact, suffixes = nil, nil }()
	if err := configure([]byte(`{"hosts":["LOCALHOST","127.0.0.1","[::1]",".internal.example.com","staging.example.com."]}`)); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "::1": true, "staging.example.com": true,
		"a.internal.example.com": true, "x.y.internal.example.com": true,
		"internal.example.com":  false, // the dot form matches subdomains only
		"xinternal.example.com": false,
		"localhost.example.com": false,
		"127.0.0.10":            false,
		"shop.example.com":      false,
		"a.staging.example.com": false, // an exact entry does not match subdomains
	} {
		if got := isInternal([]byte(host)); got != want {
			t.Errorf("isInternal(%q) = %v", host, got)
		}
	}
}

func TestNormalizeEntry(t *testing.T) {
	for _, bad := range []string{"", ".", "..x", "http://x", "x/y", "a b", "user@x", "x?y", "[]"} {
		if _, ok := normalizeEntry(bad); ok {
			t.Errorf("normalizeEntry(%q) accepted", bad)
		}
	}
}

func TestSessionSetForgetsOldest(t *testing.T) {
	s := newSessionSet(3)
	for i := range 5 {
		s.add([]byte(fmt.Sprint(i)))
	}
	s.add([]byte("4")) // already there
	for i, want := range []bool{false, false, true, true, true} {
		if s.has([]byte(fmt.Sprint(i))) != want {
			t.Errorf("has(%d) = %v", i, !want)
		}
	}
	if s.len() != 3 {
		t.Errorf("len %d", s.len())
	}
}
