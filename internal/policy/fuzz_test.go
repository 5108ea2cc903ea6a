package policy

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func FuzzParseCases(f *testing.F) {
	src, _ := DefaultPack(EngineCedar)
	for _, file := range src.Files {
		if file.Path == CasesFile {
			f.Add(file.Data)
		}
	}
	f.Add([]byte(`{"cases": [{"name": "x", "point": "task", "input": {}, "expect": {"effect": "deny"}}]}`))
	f.Add([]byte(`{"cases": [{"name": "", "point": "nope"}]}`))
	f.Add([]byte(`[]`))
	eng, err := Compile(context.Background(), src)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseCases(data)
		if err != nil {
			return
		}
		for _, tc := range cs.Cases {
			// Any parsed input must evaluate to a valid decision, never panic.
			d := decideOnce(context.Background(), &loaded{engine: eng}, tc.Point, &tc.Input, time.Second)
			if _, ok := parseEffect(string(d.Effect)); !ok {
				t.Fatalf("invalid effect %q", d.Effect)
			}
		}
	})
}

// FuzzInputBothEngines feeds arbitrary input documents to both default packs:
// neither may panic or error, and they must agree.
func FuzzInputBothEngines(f *testing.F) {
	f.Add([]byte(`{"task": {"scope": {"tools": ["*"], "data_class": "public"}}, "action": {"tool": "a", "arguments": {"n": 1.5, "x": [null, {"y": true}]}}}`), "action")
	f.Add([]byte(`{"task": {"ttl": "99999999h"}, "request": {"environment": "prod"}}`), "task")
	f.Add([]byte(`{"credential": {"ttl": "1ns"}}`), "exchange")
	engines := compiledPacks(f, nil)
	f.Fuzz(func(t *testing.T, data []byte, point string) {
		var in Input
		if json.Unmarshal(data, &in) != nil {
			return
		}
		p, err := ParsePoint(point)
		if err != nil {
			return
		}
		x, _ := prepare(p, &in)
		rr, rerr := engines[EngineRego].Eval(context.Background(), x)
		cr, cerr := engines[EngineCedar].Eval(context.Background(), x)
		if rerr != nil || cerr != nil {
			t.Fatalf("rego %v, cedar %v", rerr, cerr)
		}
		if !sameResult(rr, cr) {
			t.Fatalf("disagree: rego %+v cedar %+v", rr, cr)
		}
	})
}

func FuzzParseInput(f *testing.F) {
	f.Add([]byte(`{"agent": {"id": "a"}, "action": {"tool": "t", "arguments": {"n": 12345678901234567890}}}`))
	f.Add([]byte(`{"task": {"scope": {"tools": ["*"]}}, "extra": 1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput(data)
		if err != nil {
			return
		}
		for _, p := range Points {
			if _, err := prepare(p, in); err != nil {
				t.Fatal(err)
			}
			_ = cedarContext(in, nil, nil, nil, nil)
			_ = regoValue(in, nil, nil, nil, nil)
		}
	})
}
