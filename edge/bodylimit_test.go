package edge_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/uptimizr/edge/core"
)

// rawConn sends requests on one connection, the body written while the
// answer is read: the server may answer (and close) before it has read a
// body it refuses.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, h *harness) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c, br: bufio.NewReader(c)}
}

// send writes a request with body, chunked (in 64 KiB chunks) or with a
// Content-Length, and returns the status and the JSON error message.
func (rc *rawConn) send(method, path string, hdr map[string]string, body []byte, chunked bool) (int, string) {
	rc.t.Helper()
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: x\r\n", method, path)
	for k, v := range hdr {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	if chunked {
		head.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	} else {
		fmt.Fprintf(&head, "Content-Length: %d\r\n\r\n", len(body))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriter(rc.conn)
		w.Write(head.Bytes())
		if !chunked {
			w.Write(body)
			w.Flush()
			return
		}
		for b := body; len(b) > 0; {
			n := min(len(b), 64<<10)
			fmt.Fprintf(w, "%x\r\n", n)
			w.Write(b[:n])
			if _, err := w.WriteString("\r\n"); err != nil {
				return // the server stopped reading
			}
			b = b[n:]
		}
		w.WriteString("0\r\n\r\n")
		w.Flush()
	}()
	res, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	<-done
	var e struct{ Error string }
	json.Unmarshal(b, &e)
	return res.StatusCode, e.Error
}

// TestOverCapBodiesNameTheirLimit: a body over its endpoint's wire cap, sent
// with a Content-Length or chunked, gets a 413 naming that cap in bytes and
// MiB and the variable that sets it. A chunked body is refused while it is
// read, after the request's header is gone; the answer must still be the
// cap of its own endpoint, not the ingest one, and a chunked plugin upload
// under the cap is read whole.
func TestOverCapBodiesNameTheirLimit(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.PluginModuleMiB = 2 }) // COLLECTOR_BODY_LIMIT 1 MiB
	admin := map[string]string{"x-api-key": h.a.Admin, "Content-Type": "application/wasm"}
	pluginMsg := []string{"2097152 bytes (2 MiB)", "COLLECTOR_PLUGIN_MAX_MODULE_MB=2"}
	ingestMsg := []string{"1048576 bytes (1 MiB)", "COLLECTOR_BODY_LIMIT=1048576"}
	check := func(what string, status int, msg string, wantStatus int, want []string) {
		t.Helper()
		if status != wantStatus {
			t.Errorf("%s: %d %q, want %d", what, status, msg, wantStatus)
			return
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %q", what, msg, w)
			}
		}
	}
	module := bytes.Repeat([]byte{0x5a}, 3<<20)
	for _, chunked := range []bool{false, true} {
		st, msg := dialRaw(t, h).send("PUT", "/api/v1/plugins/big", admin, module, chunked)
		check(fmt.Sprintf("3 MiB plugin upload, chunked %v", chunked), st, msg, 413, pluginMsg)

		st, msg = dialRaw(t, h).send("POST", "/api/v1/collect", map[string]string{"x-api-key": h.a.Ingest}, bytes.Repeat([]byte{' '}, 1536<<10), chunked)
		check(fmt.Sprintf("1.5 MiB batch, chunked %v", chunked), st, msg, 413, ingestMsg)

		st, msg = dialRaw(t, h).send("PUT", "/api/v1/scenes/s/representation", admin, bytes.Repeat([]byte{' '}, 9<<20), chunked)
		check(fmt.Sprintf("9 MiB scene, chunked %v", chunked), st, msg, 413, []string{"8388608 bytes (8 MiB)", "scene representation"})
	}
	// Under the cap, a chunked upload is read whole (and judged by the
	// module checks); the next chunked body on the same connection, over
	// the ingest cap, gets the ingest cap, not the plugin one.
	rc := dialRaw(t, h)
	st, msg := rc.send("PUT", "/api/v1/plugins/almost", admin, module[:1900_000], true)
	check("1.9 MB chunked plugin upload", st, msg, 400, []string{"invalid"})
	st, msg = rc.send("POST", "/api/v1/collect", map[string]string{"x-api-key": h.a.Ingest}, bytes.Repeat([]byte{' '}, 1536<<10), true)
	check("1.5 MiB chunked batch after a chunked upload", st, msg, 413, ingestMsg)
	if m := h.metrics(); !strings.Contains(m, `uptimizr_http_requests_total{route="plugins",status="413"} 2`) {
		t.Errorf("the refused uploads are not counted as plugin requests:\n%s", grepLines(m, "status=\"413\""))
	}

	// With COLLECTOR_COMPRESSED_BODY_LIMIT set, that is the variable named.
	h2 := newHarness(t, func(c *core.Config) { c.CompressedBodyLimit = 256 << 10 })
	st, msg = dialRaw(t, h2).send("POST", "/api/v1/collect", map[string]string{"x-api-key": h2.a.Ingest}, bytes.Repeat([]byte{' '}, 300<<10), true)
	check("300 KiB chunked batch over a 256 KiB wire cap", st, msg, 413, []string{"262144 bytes on the wire", "COLLECTOR_COMPRESSED_BODY_LIMIT=262144"})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
