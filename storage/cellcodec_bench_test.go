package storage

import (
	"encoding/binary"
	"math/rand"
	"testing"
)

// benchPerfCell is a per-session perf cell as the read scenario has them:
// about 50 fps bins and 40 frame-time bins of small counts, a p95 item
// and the windows.
func benchPerfCell() []byte {
	r := rand.New(rand.NewSource(1))
	c := cell{}
	for i := 0; i < 50; i++ {
		c[string(binary.BigEndian.AppendUint16([]byte{perfItemFPS}, uint16(80+i)))] = []float64{float64(1 + r.Intn(200)), float64(r.Intn(3)), 0}
	}
	for i := 0; i < 40; i++ {
		c[string(binary.BigEndian.AppendUint16([]byte{perfItemFrameTime}, uint16(100+i*3)))] = []float64{float64(1 + r.Intn(90)), 0, 0}
	}
	c[string([]byte{perfItemP95})] = []float64{120, 2410.5, 33.25}
	c[string([]byte{perfItemWindows})] = []float64{4000, 12, 0}
	return c.encode(kindOps[kindPerfSession])
}

// BenchmarkWalkCell is the reads' inner loop: walking a cell's items and
// rows without building it.
func BenchmarkWalkCell(b *testing.B) {
	v := benchPerfCell()
	ops := kindOps[kindPerfSession]
	row := make([]float64, len(ops))
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	var sum float64
	for b.Loop() {
		if err := walkCell(ops, v, row, func(item []byte, row []float64) { sum += row[0] }); err != nil {
			b.Fatal(err)
		}
	}
	if sum == 0 {
		b.Fatal("nothing walked")
	}
}
