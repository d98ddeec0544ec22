package edge

import "testing"

func TestUnescapePath(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		"a%2Fb":          "a/b",
		"a%2fb":          "a/b",
		"%E2%82%AC":      "€",
		"50%off":         "50%off", // not an escape: kept
		"%":              "%",
		"%4":             "%4",
		"%41":            "A",
		"x%41":           "xA",
		"%2541":          "%41",
		"a+b":            "a+b", // a plus in a path is a plus
		"%2E%2E":         "..",
		"%zz%20%":        "%zz %",
		"%00":            "\x00",
		"%ff%FE":         "\xff\xfe",
		"trailing%2":     "trailing%2",
		"two%20%20space": "two  space",
	} {
		if got := string(unescapePath([]byte(in))); got != want {
			t.Errorf("unescapePath(%q) = %q, want %q", in, got, want)
		}
	}
	s := []byte("no-escape")
	if got := unescapePath(s); &got[0] != &s[0] {
		t.Error("a segment without escapes was copied")
	}
}
