package core

import "testing"

// TestSettingsListEveryVariable: Settings names exactly the variables
// LoadEnv reads, so every one of them has a flag.
func TestSettingsListEveryVariable(t *testing.T) {
	read := map[string]bool{}
	var c Config
	c.LoadEnv(func(name string) string { read[name] = true; return "" })
	listed := map[string]bool{}
	flags := map[string]bool{}
	for _, s := range Settings {
		if listed[s.Env] || flags[s.Flag] {
			t.Fatalf("%s / --%s listed twice", s.Env, s.Flag)
		}
		listed[s.Env], flags[s.Flag] = true, true
		if !read[s.Env] {
			t.Errorf("%s is listed but LoadEnv does not read it", s.Env)
		}
	}
	for name := range read {
		if !listed[name] {
			t.Errorf("LoadEnv reads %s, which has no flag", name)
		}
	}
}
