// Command schema-guard is an Uptimizr Edge filter plugin, in Go, that
// enforces a project's own event rules:
//
//   - requiredCustomNames: custom events whose name is not listed are
//     dropped;
//   - propAllowList: props keys of custom events that are not listed are
//     deleted;
//   - userIdMustBeHashed: a session_start whose user.id is not 32-128
//     lower-case hex characters loses its user.id (unhashedUserId:
//     "remove", the default) or is dropped ("drop");
//   - rejectBatch: instead of fixing, fail the whole batch at the first
//     violation (the host then applies the plugin's failure policy).
//
// See README.md for the config and the build command.
package main

import (
	sdk "github.com/uptimizr/edge/plugins/sdk/go"
)

// Config error codes (plugin-defined, ≤ -100).
const (
	codeUnknownOption = -100
	codeWrongType     = -101
	codeBadValue      = -102
)

// rules is the parsed config. A nil list means the rule is off.
type rules struct {
	customNames  []string // requiredCustomNames
	propAllow    []string // propAllowList
	hashedUserID bool     // userIdMustBeHashed
	dropUnhashed bool     // unhashedUserId == "drop"
	rejectBatch  bool
}

var cfg rules

func init() {
	sdk.Configure(configure)
	sdk.Handle(filter)
}

func configError(code int32, msg string) error { return &sdk.Error{Code: code, Msg: msg} }

func configure(config []byte) error {
	v, err := sdk.ParseValue(config)
	if err != nil {
		return err
	}
	if v.Kind() != sdk.Object {
		return configError(codeWrongType, "config must be an object")
	}
	var r rules
	for k, m := range v.Members() {
		switch k {
		case "requiredCustomNames", "propAllowList", "userIdMustBeHashed", "unhashedUserId", "rejectBatch":
		default:
			return configError(codeUnknownOption, "unknown option "+k)
		}
		if m.IsNull() {
			continue // null means the default
		}
		switch k {
		case "requiredCustomNames":
			if r.customNames, err = stringList(k, m); err != nil {
				return err
			}
		case "propAllowList":
			if r.propAllow, err = stringList(k, m); err != nil {
				return err
			}
		case "userIdMustBeHashed", "rejectBatch":
			b, ok := m.Bool()
			if !ok {
				return configError(codeWrongType, k+" must be a boolean")
			}
			if k == "rejectBatch" {
				r.rejectBatch = b
			} else {
				r.hashedUserID = b
			}
		case "unhashedUserId":
			switch {
			case m.Is("remove"):
				r.dropUnhashed = false
			case m.Is("drop"):
				r.dropUnhashed = true
			default:
				return configError(codeBadValue, `unhashedUserId must be "remove" or "drop"`)
			}
		}
	}
	cfg = r
	return nil
}

// stringList reads a JSON array of strings; an empty array is a list with
// nothing allowed (not nil).
func stringList(name string, v sdk.Value) ([]string, error) {
	if v.Kind() != sdk.Array {
		return nil, configError(codeWrongType, name+" must be an array of strings")
	}
	list := []string{}
	for _, el := range v.Elements() {
		if el.Kind() != sdk.String {
			return nil, configError(codeWrongType, name+" must be an array of strings")
		}
		list = append(list, el.String())
	}
	return list, nil
}

// listed reports whether the string value v is one of list, without
// allocating.
func listed(v sdk.Value, list []string) bool {
	for _, s := range list {
		if v.Is(s) {
			return true
		}
	}
	return false
}

// isHashed reports whether v is a string of 32-128 lower-case hex digits.
func isHashed(v sdk.Value) bool {
	if v.Kind() != sdk.String {
		return false
	}
	raw := v.Raw()
	s := raw[1 : len(raw)-1] // hex digits need no escapes: an escaped id is not hashed
	if len(s) < 32 || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func filter(e *sdk.Event) sdk.Verdict {
	switch e.Type() {
	case "custom":
		if cfg.customNames != nil {
			if name, _ := e.Get("name"); !listed(name, cfg.customNames) {
				if cfg.rejectBatch {
					return sdk.Reject
				}
				return sdk.Drop
			}
		}
		if cfg.propAllow != nil {
			props, _ := e.Get("props")
			for k, v := range props.Members() {
				if !contains(cfg.propAllow, k) {
					if cfg.rejectBatch {
						return sdk.Reject
					}
					e.DeleteMember(v)
				}
			}
		}
	case "session_start":
		if cfg.hashedUserID {
			if id, ok := e.Get("user", "id"); ok && !isHashed(id) {
				switch {
				case cfg.rejectBatch:
					return sdk.Reject
				case cfg.dropUnhashed:
					return sdk.Drop
				}
				e.DeleteMember(id)
			}
		}
	}
	return sdk.Keep
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func main() {}
