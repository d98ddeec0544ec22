package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

// floorBody is the floor's answer, shaped like the collector's.
var floorBody = []byte(`{"accepted":0,"rejected":0,"filtered":0,"quarantined":0}`)

// floor serves the floor handler: it reads each request's body (fasthttp
// reads it whole before the handler runs, up to the same cap as the
// collector) and answers 200. Nothing is decoded, validated or stored: it
// is the most a fasthttp server on this machine can take.
func floor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			_ = ctx.PostBody()
			ctx.SetContentType("application/json")
			ctx.SetBody(floorBody)
		},
		MaxRequestBodySize: 2 << 20,
		Name:               "uptimizr-bench-floor",
	}
	fmt.Fprintf(os.Stderr, "floor listening on %s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Shutdown()
	}()
	return srv.Serve(ln)
}
