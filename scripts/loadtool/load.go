package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/writhq/writ/internal/latency"
)

// Run is one load run, printed as a JSON line.
type Run struct {
	Name      string  `json:"name"`
	Round     int     `json:"round"`
	Clients   int     `json:"clients"`
	Seconds   float64 `json:"seconds"`
	Requests  int     `json:"requests"`
	PerSecond float64 `json:"requests_per_second"`
	latency.Summary
	Status map[string]int `json:"status"`
	// CPUus is the CPU time (user and system) the server's process spent
	// per answered request while measured, in microseconds, when -pid
	// names it: steadier than throughput on a shared machine.
	CPUus float64 `json:"server_cpu_us_per_request,omitempty"`
	// Unexpected counts the answers whose status was not -expect, and
	// transport errors; a run with any is not a measurement.
	Unexpected int `json:"unexpected"`
}

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, "; ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	name := fs.String("name", "", "what is loaded, for the report")
	round := fs.Int("round", 0, "the round this run belongs to, for the report")
	target := fs.String("url", "", "the URL to POST to")
	body := fs.String("body", "", "the request body, or @FILE")
	clients := fs.Int("clients", 64, "concurrent closed-loop clients, each on its own keep-alive connection")
	dur := fs.Duration("duration", 10*time.Second, "how long to measure")
	warmup := fs.Duration("warmup", time.Second, "how long to load before measuring")
	expect := fs.Int("expect", http.StatusOK, "the status every answer must have")
	pid := fs.Int("pid", 0, "the server's process `id`, to report its CPU time per request (Linux)")
	var headers headerList
	fs.Var(&headers, "header", "a request header 'Name: value' (repeatable)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *target == "" || *clients < 1 || *dur <= 0 {
		return fmt.Errorf("%w: need -url, -clients ≥ 1 and -duration > 0", errUsage)
	}
	payload := []byte(*body)
	if f, ok := strings.CutPrefix(*body, "@"); ok {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		payload = b
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("%w: header %q: want 'Name: value'", errUsage, h)
		}
		hdr.Set(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        *clients,
		MaxIdleConnsPerHost: *clients,
		MaxConnsPerHost:     *clients,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	l := &loader{client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, url: *target, body: payload, header: hdr, expect: *expect}
	if *warmup > 0 {
		l.run(*clients, *warmup)
	}
	cpu0, cpuErr := processCPU(*pid)
	run := l.run(*clients, *dur)
	run.Name, run.Round = *name, *round
	if cpu1, err := processCPU(*pid); *pid != 0 && cpuErr == nil && err == nil && run.Requests > 0 {
		run.CPUus = float64((cpu1 - cpu0).Microseconds()) / float64(run.Requests)
	}
	out, err := json.Marshal(run)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	fmt.Fprintf(os.Stderr, "%-6s clients=%-3d %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %5.0f µs/req  unexpected %d\n",
		run.Name, run.Clients, run.PerSecond, run.P50ms, run.P99ms, run.CPUus, run.Unexpected)
	if run.Unexpected > 0 {
		fmt.Fprintf(os.Stderr, "loadtool: warning: %s: %d answers were not %d: %v\n", run.Name, run.Unexpected, *expect, run.Status)
	}
	return nil
}

// loader sends one request again and again.
type loader struct {
	client *http.Client
	url    string
	body   []byte
	header http.Header
	expect int
}

// worker is what one client saw.
type worker struct {
	lat    []time.Duration
	status map[string]int
	bad    int
}

// run loads the URL with n clients for d and reports what they saw.
// Requests still in flight when d ends are not counted.
func (l *loader) run(n int, d time.Duration) Run {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ws := make([]worker, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ws {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			w.status = map[string]int{}
			w.lat = make([]time.Duration, 0, 1<<14)
			for ctx.Err() == nil {
				t0 := time.Now()
				code, err := l.once(ctx)
				lat := time.Since(t0)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					w.status["transport"]++
					w.bad++
					continue
				}
				w.status[strconv.Itoa(code)]++
				if code != l.expect {
					w.bad++
				}
				w.lat = append(w.lat, lat)
			}
		}(&ws[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := Run{Clients: n, Seconds: elapsed.Seconds(), Status: map[string]int{}}
	var all []time.Duration
	for _, w := range ws {
		all = append(all, w.lat...)
		r.Unexpected += w.bad
		for k, v := range w.status {
			r.Status[k] += v
		}
	}
	r.Requests = len(all)
	r.PerSecond = float64(len(all)) / elapsed.Seconds()
	r.Summary = latency.Summarize(all)
	return r
}

// once sends the request and reads the whole answer, so that the
// connection is kept for the next.
func (l *loader) once(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(l.body))
	if err != nil {
		return 0, err
	}
	req.Header = l.header
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// processCPU is the user and system CPU time process pid has used, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
