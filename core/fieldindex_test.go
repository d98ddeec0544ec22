package core

import "testing"

// TestFieldIndexFindsEveryFieldAndNothingElse walks every object of the
// schema: each field name resolves to its own position, and names that are
// not fields (including ones that hash alike: same length and end bytes)
// resolve to 0.
func TestFieldIndexFindsEveryFieldAndNothingElse(t *testing.T) {
	seen := map[*objectSpec]bool{}
	var walk func(o *objectSpec, path string)
	objects := 0
	walk = func(o *objectSpec, path string) {
		if o == nil || seen[o] {
			return
		}
		seen[o] = true
		objects++
		names := map[string]bool{}
		for i := range o.fields {
			f := &o.fields[i]
			names[f.name] = true
			if got := o.index.get(f.name); got != uint8(i+1) {
				t.Errorf("%s: %q at %d, want %d", path, f.name, got, i+1)
			}
			if got := o.index.getBytes([]byte(f.name)); got != uint8(i+1) {
				t.Errorf("%s: %q (bytes) at %d, want %d", path, f.name, got, i+1)
			}
			walk(f.obj, path+f.name+".")
		}
		for i := range o.fields {
			n := o.fields[i].name
			near := []string{"", "x", n + "x", "x" + n, n[:len(n)-1]}
			if len(n) >= 3 { // same length, same first and last byte
				near = append(near, n[:1]+string(rune('a'+(n[1]-'a'+1)%26))+n[2:])
			}
			for _, k := range near {
				if !names[k] && o.index.get(k) != 0 {
					t.Errorf("%s: %q is not a field but resolves to %d", path, k, o.index.get(k))
				}
			}
		}
	}
	for ty, o := range eventSpecs {
		walk(o, EventType(ty).String()+".")
	}
	if objects < 27 {
		t.Fatalf("walked %d objects", objects)
	}
}
