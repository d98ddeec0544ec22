package storage

import (
	"bytes"
	"hash/maphash"
	"slices"
	"unsafe"
)

// foldCells is a fold's delta: the cells it adds to and their items, in
// flat arrays. One open-addressed table maps (cell, item) to an entry for
// every cell of the fold, instead of a Go map per cell: a fold starts with
// no cells and makes hundreds of them, and a map per cell is allocated,
// grown and rehashed from empty in every fold, while this table, its
// entries, the items' bytes and the rows are kept from one fold to the next
// and only cleared.
type foldCells struct {
	ids   []cellID         // a cell's id, by cell index
	heads []int32          // a cell's last entry, by cell index (-1: none)
	byID  map[cellID]int32 // a cell's index

	slots []int32     // 1 + an entry's index, 0 when free; a power of two long
	ents  []foldEntry // the entries, in the order added
	keys  []byte      // the entries' items
	rows  []float64   // the entries' rows
	seed  maphash.Seed

	lastCells int // the previous fold's cells, to size the next byID
}

// foldEntry is one item of one cell.
type foldEntry struct {
	hash       uint64
	cell, prev int32 // prev: the cell's entry added before it (-1: none)
	koff, klen uint32
	roff, rlen uint32
}

// minSlots is the table's smallest size.
const minSlots = 1 << 12

func (c *foldCells) reset() {
	if c.slots == nil {
		c.seed = maphash.MakeSeed()
		c.slots = make([]int32, minSlots)
	}
	// A fold much smaller than the table's peak gives the peak's memory
	// back.
	if len(c.slots) > minSlots && len(c.ents)*8 < len(c.slots) {
		c.slots = make([]int32, max(minSlots, len(c.slots)/4))
	} else {
		clear(c.slots)
	}
	c.lastCells = len(c.ids)
	c.ids, c.heads = c.ids[:0], c.heads[:0]
	c.byID = make(map[cellID]int32, c.lastCells)
	c.ents, c.keys, c.rows = c.ents[:0], c.keys[:0], c.rows[:0]
}

// cell returns the index of the cell id, adding it when new.
func (c *foldCells) cell(id cellID) int32 {
	if i, ok := c.byID[id]; ok {
		return i
	}
	i := int32(len(c.ids))
	c.ids = append(c.ids, id)
	c.heads = append(c.heads, -1)
	c.byID[id] = i
	return i
}

func (c *foldCells) hashOf(ci int32, item []byte) uint64 {
	h := maphash.Bytes(c.seed, item) ^ (uint64(ci)+1)*0x9e3779b97f4a7c15
	return h ^ h>>31
}

// add merges row into item of cell ci with ops, adding the item when new.
func (c *foldCells) add(ci int32, ops []mergeOp, item []byte, row []float64) {
	h := c.hashOf(ci, item)
	mask := uint64(len(c.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := c.slots[i]
		if s == 0 {
			c.insert(i, h, ci, item, row)
			return
		}
		e := &c.ents[s-1]
		if e.hash == h && e.cell == ci && bytes.Equal(c.keys[e.koff:e.koff+e.klen], item) {
			mergeRow(ops, c.rows[e.roff:e.roff+e.rlen], row)
			return
		}
	}
}

func (c *foldCells) insert(slot, h uint64, ci int32, item []byte, row []float64) {
	n := int32(len(c.ents))
	c.ents = append(c.ents, foldEntry{hash: h, cell: ci, prev: c.heads[ci],
		koff: uint32(len(c.keys)), klen: uint32(len(item)), roff: uint32(len(c.rows)), rlen: uint32(len(row))})
	c.keys = append(c.keys, item...)
	c.rows = append(c.rows, row...)
	c.heads[ci] = n
	c.slots[slot] = n + 1
	if len(c.ents)*2 > len(c.slots) {
		c.grow()
	}
}

// grow doubles the table and places every entry again.
func (c *foldCells) grow() {
	c.slots = make([]int32, 2*len(c.slots))
	mask := uint64(len(c.slots) - 1)
	for n := range c.ents {
		i := c.ents[n].hash & mask
		for c.slots[i] != 0 {
			i = (i + 1) & mask
		}
		c.slots[i] = int32(n) + 1
	}
}

// item returns an entry's item. The string shares the table's bytes: it
// stays valid, and unchanged, while the table grows (an item's bytes are
// never written again), until the next reset.
func (c *foldCells) item(e *foldEntry) string {
	if e.klen == 0 {
		return ""
	}
	return unsafe.String(&c.keys[e.koff], int(e.klen))
}

// row returns an entry's row (valid until the table's rows grow).
func (c *foldCells) row(e *foldEntry) []float64 {
	return c.rows[e.roff : e.roff+e.rlen : e.roff+e.rlen]
}

// sorted returns the entries of cell ci in item order, in dst.
func (c *foldCells) sorted(dst []int32, ci int32) []int32 {
	dst = dst[:0]
	for e := c.heads[ci]; e >= 0; e = c.ents[e].prev {
		dst = append(dst, e)
	}
	slices.SortFunc(dst, func(a, b int32) int {
		ea, eb := &c.ents[a], &c.ents[b]
		return bytes.Compare(c.keys[ea.koff:ea.koff+ea.klen], c.keys[eb.koff:eb.koff+eb.klen])
	})
	return dst
}
