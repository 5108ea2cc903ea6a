package console

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/writhq/writ/internal/policy"
)

func TestDiffSources(t *testing.T) {
	a := policy.Sources{Engine: "rego", Files: []policy.File{
		{Path: "a.rego", Data: []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n")},
		{Path: "gone.rego", Data: []byte("x\n")},
		{Path: "same.json", Data: []byte("{}")},
	}}
	b := policy.Sources{Engine: "rego", Files: []policy.File{
		{Path: "a.rego", Data: []byte("1\n2\n3\n4\n5\nfive and a half\n6\n7\n8\n9\n10\n")},
		{Path: "new.rego", Data: []byte("y\n")},
		{Path: "same.json", Data: []byte("{}")},
	}}
	want := []fileDiff{
		{Path: "a.rego", Status: "changed", Lines: []diffLine{
			{"…", "2 unchanged lines"}, {" ", "3"}, {" ", "4"}, {" ", "5"}, {"+", "five and a half"}, {" ", "6"}, {" ", "7"}, {" ", "8"},
			{"…", "2 unchanged lines"}}},
		{Path: "new.rego", Status: "added", Lines: []diffLine{{"+", "y"}}},
		{Path: "same.json", Status: "same"},
		{Path: "gone.rego", Status: "removed", Lines: []diffLine{{"-", "x"}}},
	}
	if diff := cmp.Diff(want, diffSources(a, b), cmp.AllowUnexported(fileDiff{}, diffLine{})); diff != "" {
		t.Errorf("diffSources (-want +got):\n%s", diff)
	}
	b.Engine = "cedar"
	if got := diffSources(a, b)[0]; got.Path != "(engine)" || got.Status != "changed" {
		t.Errorf("engine change not reported first: %+v", got)
	}
}
