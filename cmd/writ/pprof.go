//go:build pprof

package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // the profiles, on http.DefaultServeMux
	"os"
)

// A build made for measurement (go build -tags pprof) serves Go's profiles
// on WRIT_PPROF_LISTEN (HOST:PORT), unauthenticated; a release build has
// no such endpoint. scripts/compare-authorize uses it with PROFILE=1.
func init() {
	addr := os.Getenv("WRIT_PPROF_LISTEN")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "writ: error: WRIT_PPROF_LISTEN %s: %v\n", addr, err)
		os.Exit(1)
	}
	go http.Serve(ln, nil)
}
