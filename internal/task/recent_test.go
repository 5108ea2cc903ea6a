package task

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestRecentDetails: the ring keeps the details of the latest detailsKept
// actions added, less those deleted, and finds each by its ID, through
// many times its size of adds and deletes (a model of the same, kept in a
// map and a list, says which).
func TestRecentDetails(t *testing.T) {
	defer func(n int) { detailsKept = n }(detailsKept)
	detailsKept = 64
	var r recentDetails
	var order []string
	model := map[string]detail{}
	ids := make([]string, 0, 2000)
	for i := range 2000 {
		id := newID("act")
		ids = append(ids, id)
		d := detail{decisionID: fmt.Sprint("dec", i), recordOutput: i%2 == 0}
		r.add(id, d)
		model[id] = d
		order = append(order, id)
		if len(order) > detailsKept {
			delete(model, order[0])
			order = order[1:]
		}
		if rand.IntN(3) == 0 {
			gone := order[rand.IntN(len(order))]
			r.del(gone)
			delete(model, gone)
		}
		if i%97 == 0 {
			// Seen again: updated where it is.
			again := order[len(order)-1]
			if _, ok := model[again]; ok {
				d := detail{decisionID: "again"}
				r.add(again, d)
				model[again] = d
			}
		}
		for _, id := range ids[max(0, len(ids)-3*detailsKept):] {
			got, ok := r.get(id)
			want, in := model[id]
			if ok != in || got.decisionID != want.decisionID || got.recordOutput != want.recordOutput {
				t.Fatalf("after %d adds, %s: %+v %v, want %+v %v", i+1, id, got, ok, want, in)
			}
		}
	}
	if r.slots.len() > detailsKept || len(r.keys) != detailsKept {
		t.Errorf("%d IDs found in a ring of %d, kept %d", r.slots.len(), len(r.keys), detailsKept)
	}
	if _, ok := r.get("not-an-id"); ok {
		t.Error("a foreign ID found")
	}
}
