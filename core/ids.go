package core

// ValidNodeID reports whether id is a valid node id (COLLECTOR_NODE_ID):
// 1–64 characters of A-Z a-z 0-9 . _ -.
func ValidNodeID(id string) bool { return ValidName(id) }

// ValidName reports whether s is a valid name (a node id, a bundle's key
// or plugin name): 1–64 characters of A-Z a-z 0-9 . _ -.
func ValidName(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidProjectID reports whether id is a valid project id: 1–64
// characters of A-Z a-z 0-9 . _ : -.
func ValidProjectID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
