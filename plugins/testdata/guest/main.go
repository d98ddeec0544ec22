//go:build wasip1

// Command guest is a test plugin that implements the ABI by hand. Its
// behaviour comes from its config: {"mode":"keep"} keeps every event; other
// modes drop, rewrite, misbehave or attack the host, one per test.
//
// Built by the tests with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o guest.wasm ./testdata/guest
package main

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"unsafe"
)

var (
	in    []byte
	out   []byte
	mode  string
	calls int
	hog   [][]byte
)

func ptr(b []byte) int32 {
	if cap(b) == 0 {
		return 0
	}
	return int32(uintptr(unsafe.Pointer(&b[:1][0])))
}

//go:wasmexport uptimizr_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport uptimizr_alloc
func alloc(n int32) int32 {
	if cap(in) < int(n)+1 {
		in = make([]byte, n, n+1)
	}
	in = in[:n]
	return ptr(in[:cap(in)])
}

//go:wasmexport uptimizr_init
func initPlugin(p, n int32) int32 {
	cfg := in[:n]
	i := bytes.Index(cfg, []byte(`"mode":"`))
	if i < 0 {
		mode = "keep"
		return 0
	}
	rest := cfg[i+8:]
	mode = string(rest[:bytes.IndexByte(rest, '"')])
	if mode == "refuse" {
		return -3
	}
	return 0
}

func result(b []byte) int64 {
	out = b
	return int64(ptr(out))<<32 | int64(len(out))
}

//go:wasmexport uptimizr_filter
func filter(p, n int32) int64 {
	calls++
	batch := in[:n]
	if len(batch) < 8 {
		return -2
	}
	count := int(binary.LittleEndian.Uint32(batch[4:]))
	events := make([][]byte, 0, count)
	rd := batch[8:]
	for i := 0; i < count; i++ {
		l := int(binary.LittleEndian.Uint32(rd))
		events = append(events, rd[4:4+l])
		rd = rd[4+l:]
	}
	o := binary.LittleEndian.AppendUint32(out[:0], uint32(count))
	switch {
	case mode == "keep":
		for range events {
			o = append(o, 0)
		}
	case mode == "drop-odd":
		for i := range events {
			o = append(o, byte(i%2))
		}
	case mode == "rename-custom", mode == "change-project", mode == "change-session", mode == "change-ts", mode == "invalid",
		mode == "name-lone-surrogate", mode == "name-surrogate-pair", mode == "name-bad-escape":
		for _, e := range events {
			var repl []byte
			switch {
			case mode == "rename-custom" && bytes.Contains(e, []byte(`"type":"custom"`)):
				repl = replaceValue(e, `"name":"`, "redacted")
			case mode == "name-lone-surrogate" && bytes.Contains(e, []byte(`"type":"custom"`)):
				repl = replaceValue(e, `"name":"`, `check\udc00out`)
			case mode == "name-surrogate-pair" && bytes.Contains(e, []byte(`"type":"custom"`)):
				repl = replaceValue(e, `"name":"`, `check\ud83d\ude00out`)
			case mode == "name-bad-escape" && bytes.Contains(e, []byte(`"type":"custom"`)):
				repl = replaceValue(e, `"name":"`, `check\xout`)
			case mode == "change-project":
				repl = replaceValue(e, `"projectId":"`, "other")
			case mode == "change-session":
				repl = replaceValue(e, `"sessionId":"`, "other")
			case mode == "change-ts":
				repl = bytes.Replace(e, []byte(`"ts":`), []byte(`"ts":1`), 1)
			case mode == "invalid":
				repl = bytes.Replace(e, []byte(`"sdkVersion":"`), []byte(`"sdkVersion":"`+string(bytes.Repeat([]byte("v"), 100))), 1)
			}
			if repl == nil {
				o = append(o, 0)
				continue
			}
			o = append(o, 2)
			o = binary.LittleEndian.AppendUint32(o, uint32(len(repl)))
			o = append(o, repl...)
		}
	case mode == "spin":
		for {
			calls++
		}
	case mode == "trap":
		panic("boom")
	case len(mode) > 8 && mode[:8] == "trap-on-":
		nth, _ := strconv.Atoi(mode[8:])
		if calls == nth {
			panic("boom on call " + mode[8:])
		}
		for range events {
			o = append(o, 0)
		}
	case mode == "spin-on-marker":
		// Behaves, except on a batch holding a custom event named
		// "spin-now": then it never returns.
		if bytes.Contains(batch, []byte(`"name":"spin-now"`)) {
			for {
				calls++
			}
		}
		for range events {
			o = append(o, 0)
		}
	case mode == "garbage":
		o = append(o[:0], "this is not an ABI answer"...)
	case mode == "count-mismatch":
		o = binary.LittleEndian.AppendUint32(o[:0], uint32(count+1))
	case mode == "hog":
		for {
			hog = append(hog, make([]byte, 1<<20))
		}
	case mode == "error":
		return -4
	case mode == "out-of-bounds":
		out = o
		return int64(0x7fff0000)<<32 | 1<<20
	}
	return result(o)
}

// replaceValue replaces the string value after key (e.g. `"name":"`).
func replaceValue(e []byte, key, value string) []byte {
	i := bytes.Index(e, []byte(key))
	if i < 0 {
		return nil
	}
	start := i + len(key)
	end := start + bytes.IndexByte(e[start:], '"')
	r := append([]byte(nil), e[:start]...)
	r = append(r, value...)
	return append(r, e[end:]...)
}

func main() {}
