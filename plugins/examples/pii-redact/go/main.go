// Command pii-redact is an Uptimizr Edge filter plugin, in Go: it redacts
// e-mail addresses, phone numbers, IP addresses, payment cards, bearer
// tokens, API keys and deny-listed URL query parameters from the
// free-text fields of events. See README.md for the rules, the config and
// the build command.
package main

import (
	sdk "github.com/uptimizr/edge/plugins/sdk/go"
)

// Config error codes (plugin-defined, ≤ -100), as in the AssemblyScript
// version.
const (
	codeUnknownOption = -100
	codeWrongType     = -101
	codeBadParamName  = -102
)

var (
	redactor = NewRedactor(DefaultOptions())
	text     []byte // reused for the unescaped field text
)

func init() {
	sdk.Configure(configure)
	sdk.Handle(filter)
}

func configError(code int32, msg string) error { return &sdk.Error{Code: code, Msg: msg} }

// configure reads the config: boolean switches redactEmails, redactPhones,
// redactIPs, redactCards, redactTokens, redactSecrets, redactParams (all
// true by default; null means the default), denyParams (replaces the
// default list) and extraDenyParams (added to it). Anything else is
// refused.
func configure(config []byte) error {
	cfg, err := sdk.ParseValue(config)
	if err != nil {
		return err
	}
	if cfg.Kind() != sdk.Object {
		return configError(codeWrongType, "config must be an object")
	}
	opt := DefaultOptions()
	switches := map[string]*bool{
		"redactEmails": &opt.Emails, "redactPhones": &opt.Phones, "redactIPs": &opt.IPs,
		"redactCards": &opt.Cards, "redactTokens": &opt.Tokens, "redactSecrets": &opt.Secrets,
		"redactParams": &opt.Params,
	}
	var deny, extra sdk.Value
	for k, v := range cfg.Members() {
		if p, ok := switches[k]; ok {
			if v.IsNull() {
				continue
			}
			b, ok := v.Bool()
			if !ok {
				return configError(codeWrongType, k+" must be a boolean")
			}
			*p = b
			continue
		}
		switch k {
		case "denyParams":
			deny = v
		case "extraDenyParams":
			extra = v
		default:
			return configError(codeUnknownOption, "unknown option "+k)
		}
	}
	if deny.Kind() != sdk.Invalid && !deny.IsNull() {
		if opt.DenyParams, err = paramNames(deny, nil); err != nil {
			return err
		}
	}
	if extra.Kind() != sdk.Invalid && !extra.IsNull() {
		if opt.DenyParams, err = paramNames(extra, opt.DenyParams); err != nil {
			return err
		}
	}
	redactor = NewRedactor(opt)
	return nil
}

// paramNames appends the names of the JSON array list, lower-cased, to
// names. A name is 1-64 characters of [A-Za-z0-9_.\-\[\]%].
func paramNames(list sdk.Value, names []string) ([]string, error) {
	if list.Kind() != sdk.Array {
		return nil, configError(codeWrongType, "parameter lists must be arrays of strings")
	}
	names = append([]string(nil), names...)
	for _, v := range list.Elements() {
		if v.Kind() != sdk.String {
			return nil, configError(codeWrongType, "parameter lists must be arrays of strings")
		}
		name := []byte(v.String())
		if len(name) < 1 || len(name) > 64 {
			return nil, configError(codeBadParamName, "bad parameter name "+string(name))
		}
		for i, c := range name {
			if classes[c]&cParam == 0 {
				return nil, configError(codeBadParamName, "bad parameter name "+string(name))
			}
			name[i] = lower(c)
		}
		names = append(names, string(name))
	}
	return names, nil
}

// redactString redacts the string value v (if it is one); max is the
// field's length limit in UTF-16 code units, which a marker must not push
// it past (the host would refuse the event).
func redactString(e *sdk.Event, v sdk.Value, max int) {
	if v.Kind() != sdk.String {
		return
	}
	text = v.AppendText(text[:0])
	out, changed := redactor.Redact(text)
	if !changed {
		return
	}
	e.ReplaceString(v, string(truncateUTF16(out, max)))
}

// redactValues redacts every string value of the object obj.
func redactValues(e *sdk.Event, obj sdk.Value, max int) {
	for _, v := range obj.Members() {
		redactString(e, v, max)
	}
}

// get returns the member name of obj (the zero Value when absent).
func get(obj sdk.Value, name string) sdk.Value {
	v, _ := obj.Get(name)
	return v
}

func filter(e *sdk.Event) sdk.Verdict {
	if v, ok := e.Get("url"); ok {
		redactString(e, v, 2048)
	}
	if pm, ok := e.Get("pageMeta"); ok {
		redactString(e, get(pm, "title"), 512)
		redactString(e, get(pm, "referrer"), 2048)
	}
	switch e.Type() {
	case "custom":
		if props, ok := e.Get("props"); ok {
			redactValues(e, props, 1024)
		}
	case "session_start":
		if traits, ok := e.Get("user", "traits"); ok {
			redactValues(e, traits, 1024)
		}
	case "runtime_error":
		for _, f := range [...]struct {
			name string
			max  int
		}{{"message", 1024}, {"stack", 4096}, {"source", 1024}} {
			if v, ok := e.Get(f.name); ok {
				redactString(e, v, f.max)
			}
		}
	case "asset_load":
		if v, ok := e.Get("name"); ok {
			redactString(e, v, 1024)
		}
	case "graphics_diagnostic":
		if v, ok := e.Get("message"); ok {
			redactString(e, v, 1024)
		}
	case "context_lost":
		if v, ok := e.Get("reason"); ok {
			redactString(e, v, 512)
		}
	}
	return sdk.Keep
}

func main() {}
