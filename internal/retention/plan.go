package retention

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/writhq/writ/api"
	"github.com/writhq/writ/internal/ledger"
)

// Plan is what retention will erase when, and what legal holds keep from
// it (`writ report retention`, GET /v1/reports/retention).
type Plan struct {
	At       time.Time  `json:"at"`
	Minimum  string     `json:"minimum"`
	Interval string     `json:"interval"`
	Rules    []RulePlan `json:"rules"`
	Holds    []HoldPlan `json:"holds"`
	// LastSweep is what this server's latest sweep did, if it ran one.
	LastSweep *Result `json:"last_sweep,omitempty"`
}

// RulePlan is one rule's part of the plan.
type RulePlan struct {
	Type      string `json:"type"`
	Body      string `json:"body,omitempty"`
	DataClass string `json:"data_class,omitempty"`
	Keep      string `json:"keep"`
	// Cutoff: the bodies the rule decides of events before it are due.
	Cutoff time.Time `json:"cutoff"`
	// Cursor is the index up to which the rule has swept the log.
	Cursor uint64 `json:"cursor"`
	// Due are the bodies due and not held, which the next sweep erases;
	// Held those due that a legal hold keeps. Each lists the ledger
	// indexes of their events (at most MaxListed).
	Due  Bodies `json:"due"`
	Held Bodies `json:"held"`
	// Schedule is the bodies not yet due, by the month they fall due.
	Schedule []Month `json:"schedule"`
}

// Bodies counts bodies and names the events they belong to.
type Bodies struct {
	Count  int      `json:"count"`
	Events []uint64 `json:"events"`
}

// MaxListed bounds the event indexes a Bodies lists.
const MaxListed = 1000

func (b *Bodies) add(index uint64) {
	b.Count++
	if len(b.Events) < MaxListed && (len(b.Events) == 0 || b.Events[len(b.Events)-1] != index) {
		b.Events = append(b.Events, index)
	}
}

// Month is the bodies that fall due in one calendar month (UTC).
type Month struct {
	Month string `json:"month"` // 2027-01
	// First is when the earliest of them falls due, FirstEvent its
	// event's index.
	First      time.Time `json:"first"`
	FirstEvent uint64    `json:"first_event"`
	Count      int       `json:"count"`
}

// HoldPlan is a legal hold in force and the due bodies it keeps.
type HoldPlan struct {
	api.TaskHold
	// Covers are the tasks it holds: the task and its descendants.
	Covers []string `json:"covers"`
	Kept   Bodies   `json:"kept"`
}

// body is one stored body the plan counts, by rule.
type body struct {
	rule int
	due  time.Time
	task string
}

// Plan reads the log from the oldest rule cursor on, and the events of
// held tasks before it, and says what is due, held and to come. It reads
// every leaf a rule has not swept yet: up to the longest period's worth of
// the log.
func (e *Enforcer) Plan(ctx context.Context) (*Plan, error) {
	now := e.cfg.Now().UTC()
	p := &Plan{At: now, Minimum: e.cfg.MinimumText, Interval: e.cfg.Interval.String(), Rules: []RulePlan{}, Holds: []HoldPlan{}, LastSweep: e.Last()}
	heldBy := map[string]int{} // task → its hold in p.Holds
	for _, h := range e.cfg.Tasks.Holds() {
		for _, id := range h.Covers {
			if _, ok := heldBy[id]; !ok {
				heldBy[id] = len(p.Holds)
			}
		}
		p.Holds = append(p.Holds, HoldPlan{TaskHold: h.Hold, Covers: h.Covers, Kept: Bodies{Events: []uint64{}}})
	}
	from := uint64(0)
	for i, r := range e.rules {
		c, err := e.cfg.Cursors.Cursor(ctx, r.cursor)
		if err != nil {
			return nil, err
		}
		if i == 0 || c < from {
			from = c
		}
		p.Rules = append(p.Rules, RulePlan{Type: r.Type, Body: r.Body, DataClass: r.DataClass, Keep: r.KeepText,
			Cutoff: now.Add(-r.Keep), Cursor: c, Due: Bodies{Events: []uint64{}}, Held: Bodies{Events: []uint64{}}, Schedule: []Month{}})
	}
	if len(e.rules) == 0 {
		return p, nil
	}
	// Bodies of the log from the oldest cursor on, less those erased
	// later in it.
	found := map[ledger.BodyRef]body{}
	err := e.cfg.Store.ScanLeaves(ctx, from, func(i uint64, leaf []byte) error {
		ent, err := ledger.ParseLeaf(i, slices.Clone(leaf))
		if err != nil {
			return err
		}
		e.note(ent)
		if ent.Event.Type == ledger.TypeBodyErased {
			var eb ledger.ErasedBody
			if json.Unmarshal(ent.Event.Data, &eb) == nil {
				delete(found, ledger.BodyRef{Index: eb.Index, Name: eb.Name})
			}
			return nil
		}
		return e.planEntry(ctx, ent, found, false)
	})
	if err != nil {
		return nil, err
	}
	// Before it: what holds kept, and what lifted holds left for the next
	// sweep; each body checked against the store.
	var before []string
	for id := range heldBy {
		before = append(before, id)
	}
	from2, err := e.cfg.Cursors.Cursor(ctx, ReleasedCursor)
	if err != nil {
		return nil, err
	}
	for _, rel := range e.cfg.Tasks.ReleasedSince(from2) {
		before = append(before, e.cfg.Tasks.Tree(rel.TaskID)...)
	}
	slices.Sort(before)
	idx, err := e.taskEvents(ctx, slices.Compact(before))
	if err != nil {
		return nil, err
	}
	for _, i := range idx {
		if i >= from {
			continue
		}
		leaves, err := e.cfg.Store.ReadLeaves(ctx, i, i+1)
		if err != nil {
			return nil, err
		}
		if len(leaves) == 0 {
			continue
		}
		ent, err := ledger.ParseLeaf(i, leaves[0])
		if err != nil {
			return nil, err
		}
		if err := e.planEntry(ctx, ent, found, true); err != nil {
			return nil, err
		}
	}
	refs := slices.SortedFunc(maps.Keys(found), func(a, b ledger.BodyRef) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Name, b.Name))
	})
	months := make([]map[string]*Month, len(p.Rules))
	for _, ref := range refs {
		b := found[ref]
		rp := &p.Rules[b.rule]
		if !b.due.After(now) {
			if h, ok := heldBy[b.task]; ok && b.task != "" {
				rp.Held.add(ref.Index)
				p.Holds[h].Kept.add(ref.Index)
			} else {
				rp.Due.add(ref.Index)
			}
			continue
		}
		if months[b.rule] == nil {
			months[b.rule] = map[string]*Month{}
		}
		m := b.due.Format("2006-01")
		mo := months[b.rule][m]
		if mo == nil {
			mo = &Month{Month: m, First: b.due, FirstEvent: ref.Index}
			months[b.rule][m] = mo
		}
		mo.Count++
		if b.due.Before(mo.First) {
			mo.First, mo.FirstEvent = b.due, ref.Index
		}
	}
	for i, ms := range months {
		for _, m := range slices.Sorted(maps.Keys(ms)) {
			p.Rules[i].Schedule = append(p.Rules[i].Schedule, *ms[m])
		}
	}
	return p, nil
}

// planEntry adds ent's bodies that a rule decides to found: all of them
// from the log's scan (erasures later in it take them out again), and
// only those still stored when stored is true.
func (e *Enforcer) planEntry(ctx context.Context, ent ledger.Entry, found map[ledger.BodyRef]body, stored bool) error {
	for name := range ent.Commitments {
		ri, err := e.ruleFor(ctx, ent, name)
		if err != nil || ri < 0 {
			return err
		}
		ref := ledger.BodyRef{Index: ent.Index, Name: name}
		if stored {
			if _, err := e.cfg.Store.ReadBody(ctx, ref); errors.Is(err, ledger.ErrNotFound) {
				continue
			} else if err != nil {
				return err
			}
		}
		keep := max(e.rules[ri].Keep, e.cfg.Minimum)
		found[ref] = body{rule: ri, due: ent.Event.Time.Add(keep), task: ent.Event.TaskID}
	}
	return nil
}
