package abuse

import (
	"fmt"
	"sync"
	"time"

	"github.com/writhq/writ/internal/event"
)

// ReasonSummary is the reason of an auth.rejected event that summarizes
// refusals instead of recording one.
const ReasonSummary = event.ReasonSummary

// maxReasons bounds the distinct reasons one summary counts; the rest
// count under "other".
const maxReasons = 32

// Summary is the data of the auth.rejected event that stands for the
// refusals from one source, in one interval, past those recorded one by
// one.
type Summary = event.RejectionSummary

// tally is one source's refusals in the current interval.
type tally struct {
	recorded int64
	count    int64
	first    time.Time
	last     time.Time
	reasons  map[string]int64
}

// window counts refusals per source over the current interval: the first
// perSource of each source are to be recorded one by one, the rest are
// counted for the summary.
type window struct {
	perSource  int64
	maxSources int

	mu sync.Mutex
	m  map[string]*tally
}

func newWindow(perSource, maxSources int) *window {
	return &window{perSource: int64(perSource), maxSources: maxSources, m: map[string]*tally{}}
}

// tallyOf returns src's tally, or the overflow one past maxSources. The
// caller holds mu.
func (w *window) tallyOf(src string) (string, *tally) {
	t := w.m[src]
	if t == nil {
		if len(w.m) >= w.maxSources {
			src = overflowKey
			if t = w.m[src]; t != nil {
				return src, t
			}
		}
		t = &tally{}
		w.m[src] = t
	}
	return src, t
}

// admit reports whether the next refusal from src is to be recorded one
// by one, and counts it as recorded if so.
func (w *window) admit(src string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key, t := w.tallyOf(src)
	if key == overflowKey || t.recorded >= w.perSource {
		return false
	}
	t.recorded++
	return true
}

// fold counts a refusal from src for the summary. unrecorded says it had
// been admitted but its record failed, so it no longer counts as
// recorded.
func (w *window) fold(src, reason string, now time.Time, unrecorded bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, t := w.tallyOf(src)
	if unrecorded && t.recorded > 0 {
		t.recorded--
	}
	t.add(reason, 1, now, now)
}

func (t *tally) add(reason string, n int64, first, last time.Time) {
	if t.count == 0 || first.Before(t.first) {
		t.first = first
	}
	if t.count == 0 || last.After(t.last) {
		t.last = last
	}
	t.count += n
	if t.reasons == nil {
		t.reasons = map[string]int64{}
	}
	if _, ok := t.reasons[reason]; !ok && len(t.reasons) >= maxReasons {
		reason = "other"
	}
	t.reasons[reason] += n
}

// take ends the interval: it returns a summary for every source with
// refusals past its budget and starts counting afresh.
func (w *window) take(interval time.Duration) []Summary {
	w.mu.Lock()
	m := w.m
	w.m = map[string]*tally{}
	w.mu.Unlock()
	var out []Summary
	for src, t := range m {
		if t.count == 0 {
			continue
		}
		out = append(out, Summary{
			Reason: ReasonSummary, Source: src, Count: t.count, Recorded: t.recorded,
			First: t.first.UTC(), Last: t.last.UTC(), Reasons: t.reasons, Interval: interval.String(),
			Detail: fmt.Sprintf("%d refused requests from %s between %s and %s, past the %d recorded one by one",
				t.count, src, t.first.UTC().Format(time.RFC3339), t.last.UTC().Format(time.RFC3339), t.recorded),
		})
	}
	return out
}

// restore puts back summaries that could not be recorded, so that their
// counts go into the next interval's summary instead of being lost.
func (w *window) restore(sums []Summary) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range sums {
		t := w.m[s.Source]
		if t == nil {
			t = &tally{}
			w.m[s.Source] = t
		}
		for reason, n := range s.Reasons {
			t.add(reason, n, s.First, s.Last)
		}
	}
}

// sources is how many sources the interval counts (tests).
func (w *window) sources() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
}
