// Command testplugin is the plugin the SDK's wasm tests build and run. Its
// config:
//
//	{"drop":["frame_perf"], "redact":["color"], "stripHitPoint":true,
//	 "reject":"custom-reject", "fail":false}
//
// drop lists event types to drop; redact lists custom props keys whose
// values become "[redacted]"; stripHitPoint removes camera_sample.hitPoint;
// a custom event named reject fails the batch; fail refuses the config.
package main

import (
	"errors"

	sdk "github.com/uptimizr/edge/plugins/sdk/go"
)

var (
	drop          []string
	redact        []string
	stripHitPoint bool
	reject        string
)

func init() {
	sdk.Configure(configure)
	sdk.Handle(filter)
}

func configure(config []byte) error {
	cfg, err := sdk.ParseValue(config)
	if err != nil {
		return err
	}
	if f, _ := cfg.Get("fail"); f.Kind() == sdk.Bool {
		if b, _ := f.Bool(); b {
			return errors.New("refused by config")
		}
	}
	d, _ := cfg.Get("drop")
	for _, v := range d.Elements() {
		drop = append(drop, v.String())
	}
	r, _ := cfg.Get("redact")
	for _, v := range r.Elements() {
		redact = append(redact, v.String())
	}
	s, _ := cfg.Get("stripHitPoint")
	stripHitPoint, _ = s.Bool()
	j, _ := cfg.Get("reject")
	reject = j.String()
	return nil
}

func filter(e *sdk.Event) sdk.Verdict {
	for _, t := range drop {
		if e.Type() == t {
			return sdk.Drop
		}
	}
	// the host-owned members can never be edited
	if e.SetString([]string{"ts"}, "0") == nil || e.Delete("sessionId") == nil {
		return sdk.Reject
	}
	switch e.Type() {
	case "custom":
		if name, _ := e.Get("name"); reject != "" && name.Is(reject) {
			return sdk.Reject
		}
		props, _ := e.Get("props")
		for k, v := range props.Members() {
			for _, r := range redact {
				if k == r && v.Kind() == sdk.String {
					e.ReplaceString(v, "[redacted]")
				}
			}
		}
	case "camera_sample":
		if stripHitPoint {
			e.Delete("hitPoint")
		}
	}
	return sdk.Keep
}

func main() {}
