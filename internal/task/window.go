package task

import (
	"time"

	"github.com/writhq/writ/internal/policy"
)

// window counts calls over the last minute, in one bucket per second, and
// over the last hour, in one bucket per minute: a fixed 1,920 bytes
// however many calls it has seen. It is fed the events' own times, in
// ledger order, and read at a decision's time, so the same ledger gives
// the same counts on every replica and at every replay.
type window struct {
	secs, mins buckets
}

// buckets is a ring of 60 counters, slot at%60 holding the unit at.
type buckets [60]bucket

type bucket struct {
	at              int64 // unix second or unix minute; the slot's unit
	allowed, denied uint32
}

// add counts one call at t.
func (w *window) add(t time.Time, allowed bool) {
	sec := t.Unix()
	w.secs.add(sec, allowed)
	w.mins.add(floorDiv(sec, 60), allowed)
}

// add counts one call in unit at. A call older than its slot's unit (an
// event from a replica whose clock runs behind, applied after newer ones)
// is 60 units or more older than the newest and so in no window the ring
// can answer for: it is left out.
func (b *buckets) add(at int64, allowed bool) {
	x := &b[floorMod(at, len(b))]
	switch {
	case x.at == at:
	case x.at < at || (x.allowed == 0 && x.denied == 0):
		*x = bucket{at: at}
	default:
		return
	}
	if allowed {
		x.allowed++
	} else {
		x.denied++
	}
}

// since sums the buckets of unit from on. Units after the decision's own
// (events stamped by a replica whose clock runs ahead) count too.
func (b *buckets) since(from int64) policy.Window {
	var w policy.Window
	for i := range b {
		if b[i].at >= from {
			w.Allowed += int64(b[i].allowed)
			w.Denied += int64(b[i].denied)
		}
	}
	w.Calls = w.Allowed + w.Denied
	return w
}

// newest returns the latest unit any bucket holds calls of.
func (b *buckets) newest() (int64, bool) {
	var at int64
	found := false
	for i := range b {
		if (b[i].allowed > 0 || b[i].denied > 0) && (!found || b[i].at > at) {
			at, found = b[i].at, true
		}
	}
	return at, found
}

// lastMinute counts the calls of now's second and the 59 before it.
func (w *window) lastMinute(now time.Time) policy.Window { return w.secs.since(now.Unix() - 59) }

// lastHour counts the calls of now's minute and the 59 before it.
func (w *window) lastHour(now time.Time) policy.Window {
	return w.mins.since(floorDiv(now.Unix(), 60) - 59)
}

// stale reports whether the window holds no call of the last two hours
// before now, so that dropping it changes no answer.
func (w *window) stale(now time.Time) bool {
	at, found := w.mins.newest()
	return !found || at < floorDiv(now.Unix(), 60)-120
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func floorMod(a int64, n int) int {
	m := int(a % int64(n))
	if m < 0 {
		m += n
	}
	return m
}
