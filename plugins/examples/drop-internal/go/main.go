// Command drop-internal is an Uptimizr Edge filter plugin, in Go, that
// drops events recorded on internal hosts: an event whose url has a host
// on the configured list is dropped. With dropSession, the later events of
// such a session that this instance sees are dropped too. See README.md
// for the matching rules, the config and the build command.
package main

import (
	sdk "github.com/uptimizr/edge/plugins/sdk/go"
)

// Config error codes (plugin-defined, ≤ -100).
const (
	codeUnknownOption = -100
	codeWrongType     = -101
	codeBadHost       = -102
)

// maxSessions bounds the memory of dropSession: the oldest sessions are
// forgotten first.
const maxSessions = 4096

var (
	exact       []string // host names and addresses, lower case
	suffixes    []string // ".example.com": any subdomain, lower case
	dropSession bool

	internal = newSessionSet(maxSessions)
	text     []byte
)

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
	var ex, suf []string
	drop, haveHosts := false, false
	for k, m := range v.Members() {
		switch k {
		case "hosts":
			if m.Kind() != sdk.Array {
				return configError(codeWrongType, "hosts must be an array of strings")
			}
			haveHosts = true
			for _, h := range m.Elements() {
				if h.Kind() != sdk.String {
					return configError(codeWrongType, "hosts must be an array of strings")
				}
				host, ok := normalizeEntry(h.String())
				if !ok {
					return configError(codeBadHost, "bad host "+h.String())
				}
				if host[0] == '.' {
					suf = append(suf, host)
				} else {
					ex = append(ex, host)
				}
			}
		case "dropSession":
			if m.IsNull() {
				continue
			}
			b, ok := m.Bool()
			if !ok {
				return configError(codeWrongType, "dropSession must be a boolean")
			}
			drop = b
		default:
			return configError(codeUnknownOption, "unknown option "+k)
		}
	}
	if !haveHosts {
		return configError(codeWrongType, "hosts is required")
	}
	exact, suffixes, dropSession = ex, suf, drop
	internal = newSessionSet(maxSessions)
	return nil
}

// normalizeEntry lower-cases a configured host, removes the brackets of an
// IPv6 address and a final dot. An entry is a host name, an IP address or
// a "." followed by a domain; it has no scheme, port, path or user.
func normalizeEntry(s string) (string, bool) {
	b := []byte(s)
	if len(b) > 2 && b[0] == '[' && b[len(b)-1] == ']' {
		b = b[1 : len(b)-1]
	}
	if len(b) > 1 && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 253 || string(b) == "." {
		return "", false
	}
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c | 0x20
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == ':', c == '_':
		default:
			return "", false
		}
	}
	if b[0] == '.' && (len(b) < 2 || b[1] == '.') {
		return "", false
	}
	return string(b), true
}

// urlHost returns the host of an absolute URL ("scheme://host…" or
// "//host…"), lower case, without user info, port, IPv6 brackets or a
// final dot. ok is false when the URL has no host. It works in buf.
func urlHost(buf []byte) (host []byte, ok bool) {
	start := -1
	for i := 0; i+2 < len(buf); i++ {
		c := buf[i]
		if c == ':' && buf[i+1] == '/' && buf[i+2] == '/' {
			start = i + 3
			break
		}
		if c == '/' && i == 0 && buf[1] == '/' {
			start = 2
			break
		}
		// a scheme is letters, digits, + - .
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return nil, false
		}
	}
	if start < 0 {
		return nil, false
	}
	end := start
	for end < len(buf) {
		c := buf[end]
		if c == '/' || c == '?' || c == '#' || c == '\\' {
			break
		}
		end++
	}
	auth := buf[start:end]
	for i := len(auth) - 1; i >= 0; i-- {
		if auth[i] == '@' {
			auth = auth[i+1:]
			break
		}
	}
	if len(auth) > 0 && auth[0] == '[' {
		close := -1
		for i, c := range auth {
			if c == ']' {
				close = i
				break
			}
		}
		if close < 0 {
			return nil, false
		}
		auth = auth[1:close]
	} else {
		for i := len(auth) - 1; i >= 0; i-- {
			if auth[i] == ':' {
				auth = auth[:i]
				break
			}
			if auth[i] < '0' || auth[i] > '9' {
				break
			}
		}
	}
	if len(auth) > 1 && auth[len(auth)-1] == '.' {
		auth = auth[:len(auth)-1]
	}
	if len(auth) == 0 {
		return nil, false
	}
	for i, c := range auth {
		if c >= 'A' && c <= 'Z' {
			auth[i] = c | 0x20
		}
	}
	return auth, true
}

// isInternal reports whether host is listed: equal to an exact entry, or
// a subdomain of a ".domain" entry.
func isInternal(host []byte) bool {
	for _, h := range exact {
		if string(host) == h {
			return true
		}
	}
	for _, s := range suffixes {
		if len(host) > len(s) && string(host[len(host)-len(s):]) == s {
			return true
		}
	}
	return false
}

func filter(e *sdk.Event) sdk.Verdict {
	if u, ok := e.Get("url"); ok && u.Kind() == sdk.String {
		text = u.AppendText(text[:0])
		if host, ok := urlHost(text); ok && isInternal(host) {
			if dropSession {
				if s, ok := e.Get("sessionId"); ok {
					internal.add(s.Raw())
				}
			}
			return sdk.Drop
		}
	}
	if dropSession && internal.len() > 0 {
		if s, ok := e.Get("sessionId"); ok && internal.has(s.Raw()) {
			return sdk.Drop
		}
	}
	return sdk.Keep
}

func main() {}
