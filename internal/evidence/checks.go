package evidence

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/writhq/writ/internal/ledger"
	"github.com/writhq/writ/internal/policy"
	"github.com/writhq/writ/internal/task"
)

// The checks of a bundle's contents past its proofs: payloads, policy
// sources, membership, the task chain and the derived files.

// payloads checks every disclosed body against its commitment, and that
// every body not disclosed was erased by a recorded erasure.
func (v *verifier) payloads() {
	erasedBy := map[ledger.BodyRef]uint64{}
	for _, x := range v.m.Erased {
		erasedBy[ledger.BodyRef{Index: x.Index, Name: x.Name}] = x.ErasureIndex
	}
	used := map[string]bool{}
	for k := range v.events {
		e := &v.events[k]
		for _, name := range slices.Sorted(maps.Keys(e.Commitments)) {
			c := e.Commitments[name]
			bp := payloadPath(e.Index, name)
			data, hasBody := v.files[bp]
			saltHex, hasSalt := v.files[bp+saltSuffix]
			used[bp], used[bp+saltSuffix] = true, true
			ref := ledger.BodyRef{Index: e.Index, Name: name}
			if !hasBody {
				ei, listed := erasedBy[ref]
				if !listed {
					v.failEvent("payload", e.Index, "body %q of event %d is neither disclosed (%s) nor recorded as erased", name, e.Index, bp)
					continue
				}
				if !v.erasureRecorded(ei, ref, c) {
					v.failEvent("payload", e.Index, "body %q of event %d is listed as erased by event %d, but no such erasure is in the bundle", name, e.Index, ei)
				}
				v.rep.Erased++
				continue
			}
			salt, err := hex.DecodeString(strings.TrimSpace(string(saltHex)))
			if !hasSalt || err != nil || len(salt) != ledger.SaltSize {
				v.failEvent("payload", e.Index, "%s%s is missing or not a %d-byte hex salt", bp, saltSuffix, ledger.SaltSize)
				continue
			}
			if ledger.Commit(salt, data) != c {
				v.failEvent("payload", e.Index, "%s does not match its commitment in event %d (the payload or its salt was altered)", bp, e.Index)
				continue
			}
			if e.bodies == nil {
				e.bodies = map[string]body{}
			}
			e.bodies[name] = body{salt: salt, data: data}
			v.rep.Payloads++
		}
	}
	for p := range v.files {
		if strings.HasPrefix(p, payloadsDir) && !used[p] {
			v.fail("payload", "%s is not a body any event in the bundle commits to", p)
		}
	}
}

// erasureRecorded reports whether event ei of the bundle erases ref, whose
// commitment is c, after it was written.
func (v *verifier) erasureRecorded(ei uint64, ref ledger.BodyRef, c string) bool {
	k, ok := v.present[ei]
	if !ok || ei <= ref.Index {
		return false
	}
	e := v.events[k]
	if e.Event.Type != ledger.TypeBodyErased {
		return false
	}
	var eb ledger.ErasedBody
	if json.Unmarshal(e.Event.Data, &eb) != nil {
		return false
	}
	return eb.Index == ref.Index && eb.Name == ref.Name && eb.Commitment == c
}

// policies checks each version's sources and that every event's version
// has them.
func (v *verifier) policies() {
	v.rep.Policies = len(v.m.Policies)
	dirs := map[string]string{}
	for pv, dir := range v.m.Policies {
		want, err := policyDir(pv)
		if err != nil || dir != want {
			v.fail("policy", "the manifest maps %s to %q, want %q", pv, dir, want)
			continue
		}
		dirs[dir] = pv
		src := policy.Sources{}
		eng, ok := v.files[dir+policyEngineRel]
		if !ok {
			v.fail("policy", "%s has no %s file", dir, policyEngineRel)
			continue
		}
		src.Engine = string(eng)
		for p, b := range v.files {
			if rel, ok := strings.CutPrefix(p, dir+policyFilesRel); ok {
				src.Files = append(src.Files, policy.File{Path: rel, Data: b})
			}
		}
		if got := policy.Version(src); got != pv {
			v.fail("policy", "the sources in %s hash to %s, not to %s: they are not the policy that decided", dir, got, pv)
		}
	}
	for p := range v.files {
		if rest, ok := strings.CutPrefix(p, policiesDir); ok {
			d := policiesDir + strings.SplitN(rest, "/", 2)[0] + "/"
			if _, ok := dirs[d]; !ok {
				v.fail("policy", "%s belongs to no policy version in the manifest", p)
			}
		}
	}
	// A version's load, when the bundle carries it, precedes its decisions.
	firstUse := map[string]uint64{}
	for _, e := range v.events {
		if pv := e.Event.PolicyVersion; pv != "" && e.Event.Type != ledger.TypePolicyLoaded {
			if _, ok := firstUse[pv]; !ok {
				firstUse[pv] = e.Index
			}
		}
	}
	for _, e := range v.events {
		if e.Event.Type != ledger.TypePolicyLoaded {
			continue
		}
		if first, ok := firstUse[e.Event.PolicyVersion]; ok && first < e.Index {
			v.failEvent("policy", e.Index, "policy %s decided event %d before its load (event %d)", e.Event.PolicyVersion, first, e.Index)
		}
	}
	for _, e := range v.events {
		if pv := e.Event.PolicyVersion; pv != "" && v.m.Policies[pv] == "" {
			v.failEvent("policy", e.Index, "event %d was decided by policy %s, whose sources are not in the bundle", e.Index, pv)
		}
	}
}

// membership checks that every event belongs to the chain the manifest
// names.
func (v *verifier) membership() {
	tasks := map[string]bool{}
	for _, t := range slices.Concat(v.m.Tasks, v.m.Ancestors) {
		tasks[t] = true
	}
	for _, e := range v.events {
		if e.Event.Type == "" {
			continue // did not parse; already reported
		}
		if e.Event.Type == ledger.TypeBodyErased {
			var eb ledger.ErasedBody
			if json.Unmarshal(e.Event.Data, &eb) != nil {
				v.failEvent("events", e.Index, "erasure event %d has no readable data", e.Index)
			} else if _, ok := v.present[eb.Index]; !ok {
				v.failEvent("events", e.Index, "erasure event %d erases a body of event %d, which is not in the bundle", e.Index, eb.Index)
			}
			continue
		}
		if e.Event.Type == ledger.TypePolicyLoaded {
			if v.m.Policies[e.Event.PolicyVersion] == "" {
				v.failEvent("events", e.Index, "policy.loaded event %d loads a version no event of the bundle was decided by", e.Index)
			}
			continue
		}
		if !tasks[e.Event.TaskID] {
			v.failEvent("events", e.Index, "event %d belongs to task %q, which is not one of the bundle's tasks", e.Index, e.Event.TaskID)
		}
	}
}

// chain replays the events through the task state machine: each must
// follow from those before it. Each that does not is a failure naming it.
func (v *verifier) chain() {
	st := task.NewState()
	for _, e := range v.events {
		if e.Event.Type == "" || e.Event.Type == ledger.TypeBodyErased {
			continue
		}
		ent := e.Entry
		if b, ok := e.bodies["intent"]; ok {
			ent.Event.Bodies = map[string][]byte{"intent": b.data}
		}
		// An event that does not follow is left out and the rest checked
		// without it, as writ's server does with its ledger at start.
		if k := st.Replay(ent); k != nil {
			v.failEvent("chain", e.Index, "event %d does not follow from the events before it (writ leaves it out of the task state): %s", e.Index, k.Reason)
		}
	}
}

// derived rebuilds controls.csv, ocsf.jsonl and report.html from the
// events and requires the bundle's to be the same.
func (v *verifier) derived() {
	if v.allBad {
		return
	}
	m := v.m
	vw := &view{m: &m, events: v.events}
	for _, d := range []struct {
		path string
		gen  func(*view) []byte
	}{{ControlsPath, controlsCSV}, {OCSFPath, ocsfJSONL}, {ReportPath, reportHTML}} {
		b, ok := v.files[d.path]
		if !ok {
			v.fail("derived", "the bundle has no %s", d.path)
			continue
		}
		if !bytes.Equal(b, d.gen(vw)) {
			v.fail("derived", "%s does not match the bundle's events", d.path)
		}
	}
}

// cleanPath reports whether p is a plain relative path inside the bundle.
func cleanPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && !strings.Contains(p, `\`) && path.Clean(p) == p && !strings.HasPrefix(p, "../")
}
