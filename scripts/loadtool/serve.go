package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// call is the body of a decision API request, as the no-op handler
// decodes it.
type call struct {
	Tool      string          `json:"tool"`
	Operation string          `json:"operation"`
	Resource  string          `json:"resource"`
	Arguments json.RawMessage `json:"arguments"`
	DataClass string          `json:"data_class"`
}

// answer is what the no-op handler answers: the shape of an allow.
type answer struct {
	Allow      bool   `json:"allow"`
	ActionID   string `json:"action_id"`
	DecisionID string `json:"decision_id"`
}

// serveNoop serves the ceiling: a handler that decodes the request's JSON
// body, checks that it names a tool, and encodes an answer, doing nothing
// else. Every path is served the same way.
func serveNoop(args []string) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:7796", "the address to serve on")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var n atomic.Uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c call
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil || c.Tool == "" {
			http.Error(w, `{"error":"invalid_request","detail":"want a JSON call with a tool"}`, http.StatusBadRequest)
			return
		}
		id := strconv.FormatUint(n.Add(1), 10)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer{Allow: true, ActionID: "act_" + id, DecisionID: "dec_" + id})
	})
	return serve(*addr, h)
}

// serveOTLP accepts OTLP/HTTP exports and drops them, answering an empty
// ExportTraceServiceResponse, so that tracing can be on while nothing
// keeps the spans.
func serveOTLP(args []string) error {
	fs := flag.NewFlagSet("otlp", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:4318", "the address to serve on")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	return serve(*addr, h)
}

func serve(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "loadtool: serving on", ln.Addr())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
