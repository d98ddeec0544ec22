package edge_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/edge"
)

// TestShutdownAnswersEveryRequest sends from many keep-alive connections,
// and from new ones, all through a shutdown. Every request the server
// accepted a connection for gets a whole response: 200 (then it is stored)
// or 503 with Retry-After and Connection: close (then nothing of it is
// stored). None sees its connection closed under it, including a request
// whose bytes reached the server while its connection was idle. After the
// listener closes, connections are refused.
func TestShutdownAnswersEveryRequest(t *testing.T) {
	h := newHarness(t, func(c *core.Config) { c.ShutdownGrace = 300 * time.Millisecond })
	// The client addresses the server took, with when: a port the client
	// is given again (once the server closed its last connection on it) is
	// a new connection, taken only if accepted after its dial began.
	var accepted sync.Map
	edge.SetAcceptHook(h.srv, func(c net.Conn) { accepted.Store(c.RemoteAddr().String(), time.Now()) })
	took := func(local string, dialed time.Time) bool {
		at, ok := accepted.Load(local)
		return ok && !at.(time.Time).Before(dialed)
	}
	addr := strings.TrimPrefix(h.base, "http://")
	body := batchOf(validEvent("scene_change", ""))
	req := fmt.Sprintf("POST /api/v1/collect HTTP/1.1\r\nHost: x\r\nx-api-key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", h.a.Ingest, len(body), body)

	var ok200, got503, lost, reset, refused atomic.Int64
	var bad sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := func(idle time.Duration) {
		defer wg.Done()
		var conn net.Conn
		var br *bufio.Reader
		var dialed time.Time
		for {
			select {
			case <-stop:
				if conn != nil {
					conn.Close()
				}
				return
			default:
			}
			if conn == nil {
				dialed = time.Now()
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
					continue
				}
				conn, br = c, bufio.NewReader(c)
			}
			local := conn.LocalAddr().String()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, werr := io.WriteString(conn, req)
			var res *http.Response
			var rerr error
			if werr == nil {
				res, rerr = http.ReadResponse(br, nil)
			}
			if werr != nil || rerr != nil {
				if took(local, dialed) {
					lost.Add(1)
					bad.Store(local, fmt.Sprint(werr, rerr))
				} else {
					reset.Add(1) // reset in the accept queue of the closing listener
				}
				conn.Close()
				conn = nil
				continue
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch {
			case res.StatusCode == 200:
				ok200.Add(1)
			case res.StatusCode == 503 && res.Header.Get("Retry-After") != "" && res.Close:
				got503.Add(1)
			default:
				bad.Store(local, fmt.Sprintf("status %d close=%v", res.StatusCode, res.Close))
				lost.Add(1)
			}
			if res.Close {
				conn.Close()
				conn = nil
			}
			if idle > 0 {
				time.Sleep(idle)
			}
		}
	}
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go client(0)
	}
	// Connections that sit idle between requests, some longer than the
	// drain's idle cut-off.
	for _, d := range []time.Duration{30 * time.Millisecond, 90 * time.Millisecond, 150 * time.Millisecond} {
		wg.Add(1)
		go client(d)
	}
	time.Sleep(400 * time.Millisecond)
	before := ok200.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // the clients see the closed listener
	close(stop)
	wg.Wait()

	bad.Range(func(k, v any) bool { t.Errorf("request on %v: %v", k, v); return true })
	t.Logf("200: %d (%d before shutdown), 503: %d, lost: %d, reset before accept: %d, refused connects: %d",
		ok200.Load(), before, got503.Load(), lost.Load(), reset.Load(), refused.Load())
	if lost.Load() != 0 {
		t.Fatalf("%d requests on connections the server had accepted got no response", lost.Load())
	}
	if got503.Load() == 0 || refused.Load() == 0 {
		t.Fatal("the shutdown neither answered 503 nor refused connections: it was not exercised")
	}
	// Every 200 is in the ingest log, and no 503 is.
	if n := int64(h.logRecords("a")); n != ok200.Load() {
		t.Fatalf("%d records in the ingest log, %d requests answered 200", n, ok200.Load())
	}
}
