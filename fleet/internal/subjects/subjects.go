// Package subjects matches NATS subject filters (tokens separated by dots,
// "*" for one token, ">" for the rest), which both engines take to select
// the records of some projects.
package subjects

import "strings"

// Covers reports whether every subject subj matches (subj may be a filter
// itself) also matches filter.
func Covers(filter, subj string) bool {
	f, want := strings.Split(filter, "."), strings.Split(subj, ".")
	for i, tok := range f {
		if tok == ">" {
			return i < len(want)
		}
		if i >= len(want) {
			return false
		}
		switch {
		case want[i] == ">":
			return false // only ">" covers ">"
		case want[i] == "*" && tok != "*":
			return false
		case tok == "*" || tok == want[i]:
		default:
			return false
		}
	}
	return len(f) == len(want)
}

// Valid reports whether filter is a well-formed subject filter: tokens not
// empty, ">" only last, wildcards only as whole tokens.
func Valid(filter string) bool {
	if filter == "" {
		return false
	}
	toks := strings.Split(filter, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return false
		case tok == ">":
			if i != len(toks)-1 {
				return false
			}
		case tok == "*":
		case strings.ContainsAny(tok, "*> \t\r\n"):
			return false
		}
	}
	return true
}
