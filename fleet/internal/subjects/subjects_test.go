package subjects

import "testing"

func TestCovers(t *testing.T) {
	for _, c := range []struct {
		filter, subj string
		want         bool
	}{
		{"uptimizr.events.>", "uptimizr.events.>", true},
		{"uptimizr.events.>", "uptimizr.events.shop", true},
		{"uptimizr.events.>", "uptimizr.events.*", true},
		{"uptimizr.events.>", "uptimizr.events", false},
		{"uptimizr.>", "uptimizr.events.>", true},
		{">", "uptimizr.events.>", true},
		{"uptimizr.*.>", "uptimizr.events.>", true},
		{"uptimizr.events.*", "uptimizr.events.>", false},
		{"uptimizr.events.*", "uptimizr.events.shop", true},
		{"uptimizr.events.*", "uptimizr.events.shop.x", false},
		{"uptimizr.events.shop", "uptimizr.events.*", false},
		{"uptimizr.events.shop", "uptimizr.events.shop", true},
		{"uptimizr.events.shop", "uptimizr.events.blog", false},
		{"uptimizr.deadletter.S", "uptimizr.events.>", false},
	} {
		if got := Covers(c.filter, c.subj); got != c.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", c.filter, c.subj, got, c.want)
		}
	}
}

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"uptimizr.events.shop": true, "uptimizr.events.>": true, "uptimizr.*.x": true,
		"": false, "uptimizr..x": false, "uptimizr.>.x": false, "uptimizr.a*": false, "a b": false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
