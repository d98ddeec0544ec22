package edge_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
)

// TestIdleConnectionsHoldNoBodies: a keep-alive connection that sent a large
// body and went idle keeps no buffer of that size (fasthttp's
// ReduceMemoryUsage): 64 idle connections that each sent a 1,000-event batch
// leave the heap within a few MiB of where it was, where each would
// otherwise keep its largest body (about 20 MiB in all). The batches carry a
// key that does not exist, so the server reads each body whole and answers
// 401, and the store, which would grow with what it keeps, keeps nothing.
func TestIdleConnectionsHoldNoBodies(t *testing.T) {
	h := newHarness(t, nil)
	var one []byte
	for _, f := range loadFixtures(t) {
		if len(f.events) == 200 {
			one = f.body
			break
		}
	}
	if one == nil {
		t.Fatal("no 200-event sample batch")
	}
	// Five copies of the 200 events: one body of 1,000 events.
	i, j := bytes.Index(one, []byte(`[`)), bytes.LastIndex(one, []byte(`]`))
	events := one[i+1 : j]
	body := []byte(`{"schemaVersion":"1.0","events":[` + strings.Repeat(string(events)+",", 4) + string(events) + `]}`)
	addr := strings.TrimPrefix(h.base, "http://")
	send := func(c net.Conn, r *bufio.Reader) {
		t.Helper()
		fmt.Fprintf(c, "POST /api/v1/collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-api-key: %s\r\nContent-Length: %d\r\n\r\n", "upk_no_such_key_0123456789abcdef", len(body))
		c.Write(body)
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || res.Close {
			t.Fatalf("status %d, close %v: want 401 on a connection kept open", res.StatusCode, res.Close)
		}
	}
	// Warm up: one connection, so pools and caches exist before the baseline.
	warm, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer warm.Close()
	send(warm, bufio.NewReader(warm))
	heap := func() uint64 {
		for k := 0; k < 3; k++ {
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	const conns = 64
	for k := 0; k < conns; k++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		send(c, bufio.NewReader(c))
	}
	after := heap()
	grown := int64(after) - int64(before)
	if limit := int64(conns*len(body)) / 4; grown > limit {
		t.Fatalf("heap grew by %d KiB with %d idle connections that each sent %d KiB; want under %d KiB",
			grown>>10, conns, len(body)>>10, limit>>10)
	}
	t.Logf("heap grew by %d KiB for %d idle connections of %d KiB bodies", grown>>10, conns, len(body)>>10)
}
