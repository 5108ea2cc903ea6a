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

	"google.golang.org/protobuf/encoding/protowire"
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
// keeps the spans. It counts the spans it was sent (walking the protobuf
// wire format, without decoding the spans), and GET answers that count,
// so that a run can tell whether the exporter kept up or dropped spans.
func serveOTLP(args []string) error {
	fs := flag.NewFlagSet("otlp", flag.ContinueOnError)
	addr := fs.String("listen", "127.0.0.1:4318", "the address to serve on")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	var spans, bad atomic.Uint64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			fmt.Fprintf(w, "%d spans received, %d exports not understood\n", spans.Load(), bad.Load())
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if n, ok := countSpans(body); err == nil && ok {
			spans.Add(n)
		} else {
			bad.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	return serve(*addr, h)
}

// countSpans counts the spans of an ExportTraceServiceRequest: field 1
// (resource_spans) holds field 2 (scope_spans), which holds field 2
// (spans).
func countSpans(b []byte) (uint64, bool) {
	var n uint64
	ok := eachField(b, 1, func(rs []byte) bool {
		return eachField(rs, 2, func(ss []byte) bool {
			return eachField(ss, 2, func([]byte) bool { n++; return true })
		})
	})
	return n, ok
}

// eachField calls fn with the bytes of every length-delimited field num
// of the message b, and reports whether b parsed.
func eachField(b []byte, num protowire.Number, fn func([]byte) bool) bool {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return false
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 || !fn(v) {
				return false
			}
			b = b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return false
		}
		b = b[l:]
	}
	return true
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
