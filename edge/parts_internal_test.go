package edge

import (
	"reflect"
	"testing"
)

// TestPartsHoldNoServer keeps the parts narrow: none of them, nor anything
// they hold by value, refers to the Server or to another part, and none
// holds the whole Deps.
func TestPartsHoldNoServer(t *testing.T) {
	banned := map[reflect.Type]bool{
		reflect.TypeFor[Server]():    true,
		reflect.TypeFor[Deps]():      true,
		reflect.TypeFor[ingestAPI](): true,
		reflect.TypeFor[readAPI]():   true,
		reflect.TypeFor[adminAPI]():  true,
	}
	seen := map[reflect.Type]bool{}
	var walk func(path string, ty reflect.Type, top bool)
	walk = func(path string, ty reflect.Type, top bool) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Array || ty.Kind() == reflect.Chan || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if banned[ty] && !top {
			t.Errorf("%s holds a %s", path, ty)
			return
		}
		if seen[ty] || ty.Kind() != reflect.Struct || ty.PkgPath() != reflect.TypeFor[Server]().PkgPath() {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			walk(path+"."+f.Name, f.Type, false)
		}
	}
	for _, ty := range []reflect.Type{reflect.TypeFor[ingestAPI](), reflect.TypeFor[readAPI](), reflect.TypeFor[adminAPI](), reflect.TypeFor[base]()} {
		walk(ty.Name(), ty, true)
	}
}
