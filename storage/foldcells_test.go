package storage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestFoldCellsAgreesWithMaps adds rows to random items of random cells,
// over several folds of different sizes (the table grows, is cleared and
// gives memory back), and checks every cell against a map per cell: the
// same items, in sorted order, with the same merged rows.
func TestFoldCellsAgreesWithMaps(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []aggKind{kindCounts, kindPerf, kindResources, kindHeatGaze}
	var c foldCells
	for fold, adds := range []int{10, 50_000, 300, 0, 20_000, 5} {
		c.reset()
		want := map[cellID]cell{}
		for range adds {
			kind := kinds[r.IntN(len(kinds))]
			id := cellID{kind, fmt.Sprint("s", r.IntN(20)), fmt.Sprint("scene", r.IntN(3)), int64(r.IntN(4))}
			item := []byte(fmt.Sprint("item", r.IntN(400)))
			if r.IntN(50) == 0 {
				item = nil // the empty item is an item too
			}
			ops := kindOps[kind]
			row := make([]float64, len(ops))
			for i := range row {
				row[i] = float64(r.IntN(1000)) - 500
			}
			c.add(c.cell(id), ops, item, row)
			if want[id] == nil {
				want[id] = cell{}
			}
			want[id].add(ops, string(item), row...)
		}
		if len(c.ids) != len(want) {
			t.Fatalf("fold %d: %d cells, want %d", fold, len(c.ids), len(want))
		}
		var ents []int32
		for ci, id := range c.ids {
			w := want[id]
			ents = c.sorted(ents, int32(ci))
			if len(ents) != len(w) {
				t.Fatalf("fold %d, cell %v: %d items, want %d", fold, id, len(ents), len(w))
			}
			var items []string
			for _, e := range ents {
				it := c.item(&c.ents[e])
				items = append(items, it)
				if got := c.row(&c.ents[e]); !slices.Equal(got, w[it]) {
					t.Fatalf("fold %d, cell %v, item %q: row %v, want %v", fold, id, it, got, w[it])
				}
			}
			if !slices.IsSorted(items) {
				t.Fatalf("fold %d, cell %v: items not sorted: %q", fold, id, items)
			}
		}
	}
	if len(c.slots) >= 1<<17 {
		t.Errorf("after small folds the table still has %d slots", len(c.slots))
	}
}
