package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// subject is the server the others are compared with.
const subject = "writ"

// report prints the runs read from r (JSON lines, as load prints them):
// each run, then for every round and number of clients the subject's
// throughput as a ratio of each other server's in the same round, and the
// range of every figure over the rounds.
func report(r io.Reader, w io.Writer) error {
	var runs []Run
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var run Run
		if err := json.Unmarshal([]byte(line), &run); err != nil {
			return fmt.Errorf("reading a run: %v", err)
		}
		runs = append(runs, run)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(runs) == 0 {
		return fmt.Errorf("no runs to report")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tserver\tclients\treq/s\tp50 ms\tp90 ms\tp99 ms\tserver CPU µs/req\tunexpected\t")
	for _, run := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.0f\t%d\t\n", run.Round, run.Name, run.Clients, run.PerSecond, run.P50ms, run.P90ms, run.P99ms, run.CPUus, run.Unexpected)
	}
	tw.Flush()

	type key struct {
		name    string
		clients int
	}
	byRound := map[int]map[key]Run{}
	var names []string
	var clients []int
	for _, run := range runs {
		if byRound[run.Round] == nil {
			byRound[run.Round] = map[key]Run{}
		}
		byRound[run.Round][key{run.Name, run.Clients}] = run
		if !slices.Contains(names, run.Name) {
			names = append(names, run.Name)
		}
		if !slices.Contains(clients, run.Clients) {
			clients = append(clients, run.Clients)
		}
	}
	slices.Sort(clients)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ratios of "+subject+"'s throughput, each in its own round:")
	type series struct{ vals []float64 }
	ranges := map[string]*series{}
	var order []string
	note := func(label string, v float64) {
		if ranges[label] == nil {
			ranges[label] = &series{}
			order = append(order, label)
		}
		ranges[label].vals = append(ranges[label].vals, v)
	}
	rounds := make([]int, 0, len(byRound))
	for k := range byRound {
		rounds = append(rounds, k)
	}
	slices.Sort(rounds)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, rd := range rounds {
		m := byRound[rd]
		for _, c := range clients {
			s, ok := m[key{subject, c}]
			if !ok {
				continue
			}
			var parts []string
			for _, n := range names {
				p, ok := m[key{n, c}]
				if n == subject || !ok || p.PerSecond == 0 {
					continue
				}
				ratio := s.PerSecond / p.PerSecond
				parts = append(parts, fmt.Sprintf("%s/%s %.2f×", subject, n, ratio))
				note(fmt.Sprintf("%s/%s, %d clients", subject, n, c), ratio)
			}
			fmt.Fprintf(tw, "round %d\t%d clients\t%s\n", rd, c, strings.Join(parts, "\t"))
		}
	}
	tw.Flush()
	for _, run := range runs {
		note(fmt.Sprintf("%s req/s, %d clients", run.Name, run.Clients), run.PerSecond)
		note(fmt.Sprintf("%s p50 ms, %d clients", run.Name, run.Clients), run.P50ms)
		note(fmt.Sprintf("%s p99 ms, %d clients", run.Name, run.Clients), run.P99ms)
		if run.CPUus > 0 {
			note(fmt.Sprintf("%s server CPU µs/req, %d clients", run.Name, run.Clients), run.CPUus)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ranges over %d round(s):\n", len(rounds))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, label := range order {
		v := ranges[label].vals
		lo, hi := slices.Min(v), slices.Max(v)
		fmt.Fprintf(tw, "%s\t%s\n", label, span(lo, hi))
	}
	return tw.Flush()
}

// span writes lo–hi with as many decimals as their size needs.
func span(lo, hi float64) string {
	f := func(v float64) string {
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f", v)
		case v >= 10:
			return fmt.Sprintf("%.1f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	if f(lo) == f(hi) {
		return f(lo)
	}
	return f(lo) + "–" + f(hi)
}
