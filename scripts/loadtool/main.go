// Command loadtool is the load generator and the two stand-in servers of
// scripts/compare-authorize: it loads one HTTP endpoint with closed-loop
// keep-alive clients and reports throughput and latency percentiles; it
// serves the no-op JSON handler that is the ceiling the others are
// compared with, and an OTLP/HTTP sink that accepts and drops spans, so
// that a traced server has a collector to export to; it adds and removes
// the NATS JetStream stream a server's event sink writes to; and it prints the
// runs it recorded as a table of ratios.
//
//	loadtool load -name writ -url URL [-header 'K: V']... [-body JSON | -body @FILE] [-clients 64] [-duration 10s] [-warmup 1s] [-expect 200]
//	loadtool noop -listen 127.0.0.1:7796
//	loadtool otlp -listen 127.0.0.1:4318
//	loadtool stream -url nats://127.0.0.1:4222 -add NAME -subjects 'a.>' | -info NAME | -delete NAME
//	loadtool report < runs.jsonl
//
// It is its own process, and knows nothing of writ: every server is
// loaded the same way, by the same code.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "noop":
		err = serveNoop(os.Args[2:])
	case "otlp":
		err = serveOTLP(os.Args[2:])
	case "stream":
		err = stream(os.Args[2:])
	case "report":
		err = report(os.Stdin, os.Stdout)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtool: error: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadtool load|noop|otlp|stream|report [flags]; see the package comment")
	os.Exit(2)
}

var errUsage = errors.New("bad arguments")
