package storage

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/uptimizr/edge/core"
)

func sceneSummaries(t *testing.T, sc *Scenes, pnum uint32, after string, limit int) []string {
	t.Helper()
	rows, err := sc.List(pnum, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = string(r)
	}
	return out
}

func TestScenesPutGetListOverwrite(t *testing.T) {
	s := openTest(t, Options{})
	sc := s.Scenes()

	if doc, ok, err := sc.Get(1, "hall"); err != nil || ok || doc != nil {
		t.Fatalf("get before put: %q %v %v", doc, ok, err)
	}
	if rows := sceneSummaries(t, sc, 1, "", 0); len(rows) != 0 {
		t.Fatalf("list before put: %q", rows)
	}

	created, err := sc.Put(1, "hall", []byte(`s-hall-1`), []byte(`d-hall-1`))
	if err != nil || !created {
		t.Fatalf("first put: created=%v err=%v", created, err)
	}
	created, err = sc.Put(1, "hall", []byte(`s-hall-2`), []byte(`d-hall-2`))
	if err != nil || created {
		t.Fatalf("second put: created=%v err=%v", created, err)
	}
	doc, ok, err := sc.Get(1, "hall")
	if err != nil || !ok || string(doc) != "d-hall-2" {
		t.Fatalf("get after overwrite: %q %v %v", doc, ok, err)
	}
	if rows := sceneSummaries(t, sc, 1, "", 0); len(rows) != 1 || rows[0] != "s-hall-2" {
		t.Fatalf("list after overwrite: %q", rows)
	}

	// The caller's buffers may be reused once Put returns.
	sum, body := []byte("s-lobby"), []byte("d-lobby")
	if _, err := sc.Put(1, "lobby", sum, body); err != nil {
		t.Fatal(err)
	}
	copy(sum, "XXXXXXX")
	copy(body, "XXXXXXX")
	if doc, _, _ := sc.Get(1, "lobby"); string(doc) != "d-lobby" {
		t.Fatalf("stored document aliases the caller's buffer: %q", doc)
	}

	// A large document (a 10,000-mesh proxy is a few MB) round-trips intact.
	big := bytes.Repeat([]byte(`{"name":"mesh","aabb":[0,0,0,1,1,1]},`), 100_000)
	if _, err := sc.Put(1, "big", []byte("s-big"), big); err != nil {
		t.Fatal(err)
	}
	if doc, ok, err := sc.Get(1, "big"); err != nil || !ok || !bytes.Equal(doc, big) {
		t.Fatalf("big document: ok=%v err=%v len=%d want %d", ok, err, len(doc), len(big))
	}
}

func TestScenesListOrderAfterAndLimit(t *testing.T) {
	s := openTest(t, Options{})
	sc := s.Scenes()
	// Ids that are prefixes of one another must still list in id order,
	// each once.
	ids := []string{"b", "a.b", "a", "A", "a-", "ab", "a:z", "0", "a_"}
	for _, id := range ids {
		if _, err := sc.Put(7, id, []byte("s:"+id), []byte("d:"+id)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"s:0", "s:A", "s:a", "s:a-", "s:a.b", "s:a:z", "s:a_", "s:ab", "s:b"}
	if got := sceneSummaries(t, sc, 7, "", 0); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("order:\n got %q\nwant %q", got, want)
	}
	if got := sceneSummaries(t, sc, 7, "", 3); strings.Join(got, " ") != "s:0 s:A s:a" {
		t.Fatalf("limit 3: %q", got)
	}
	// after is exclusive, and ids extending it come next.
	if got := sceneSummaries(t, sc, 7, "a", 2); strings.Join(got, " ") != "s:a- s:a.b" {
		t.Fatalf("after a: %q", got)
	}
	// after need not name a stored scene.
	if got := sceneSummaries(t, sc, 7, "a0", 0); strings.Join(got, " ") != "s:a:z s:a_ s:ab s:b" {
		t.Fatalf("after a0: %q", got)
	}
	if got := sceneSummaries(t, sc, 7, "b", 0); len(got) != 0 {
		t.Fatalf("after the last: %q", got)
	}
	// Paging with after visits every scene once.
	var paged []string
	after := ""
	for {
		page := sceneSummaries(t, sc, 7, after, 2)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = strings.TrimPrefix(page[len(page)-1], "s:")
	}
	if strings.Join(paged, " ") != strings.Join(want, " ") {
		t.Fatalf("paged: %q", paged)
	}
}

func TestScenesIsolatedByProject(t *testing.T) {
	s := openTest(t, Options{})
	sc := s.Scenes()
	// Project numbers whose big-endian bytes share prefixes with each other.
	for _, pn := range []uint32{1, 2, 256, 1 << 24} {
		if _, err := sc.Put(pn, "hall", []byte(fmt.Sprintf("s%d", pn)), []byte(fmt.Sprintf("d%d", pn))); err != nil {
			t.Fatal(err)
		}
	}
	if created, err := sc.Put(2, "only-2", []byte("s"), []byte("d")); err != nil || !created {
		t.Fatal(created, err)
	}
	for _, pn := range []uint32{1, 2, 256, 1 << 24} {
		doc, ok, err := sc.Get(pn, "hall")
		if err != nil || !ok || string(doc) != fmt.Sprintf("d%d", pn) {
			t.Fatalf("project %d: %q %v %v", pn, doc, ok, err)
		}
		rows := sceneSummaries(t, sc, pn, "", 0)
		want := []string{fmt.Sprintf("s%d", pn)}
		if pn == 2 {
			want = append(want, "s")
		}
		if strings.Join(rows, " ") != strings.Join(want, " ") {
			t.Fatalf("project %d lists %q, want %q", pn, rows, want)
		}
	}
	if _, ok, _ := sc.Get(1, "only-2"); ok {
		t.Fatal("project 1 sees project 2's scene")
	}
	if rows := sceneSummaries(t, sc, 3, "", 0); len(rows) != 0 {
		t.Fatalf("project 3 lists %q", rows)
	}
}

func TestScenesPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	if _, err := s.Scenes().Put(4, "hall", []byte("s1"), []byte("d1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scenes().Put(4, "hall", []byte("s2"), []byte("d2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Scenes().Put(4, "atrium", []byte("sa"), []byte("da")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, Options{Dir: dir})
	sc := s.Scenes()
	if doc, ok, err := sc.Get(4, "hall"); err != nil || !ok || string(doc) != "d2" {
		t.Fatalf("after reopen: %q %v %v", doc, ok, err)
	}
	if rows := sceneSummaries(t, sc, 4, "", 0); strings.Join(rows, " ") != "sa s2" {
		t.Fatalf("list after reopen: %q", rows)
	}
	if created, err := sc.Put(4, "hall", []byte("s3"), []byte("d3")); err != nil || created {
		t.Fatalf("replace after reopen: created=%v err=%v", created, err)
	}
}

func TestScenesInvalidIDAndClosedStore(t *testing.T) {
	s := openTest(t, Options{})
	sc := s.Scenes()
	for _, id := range []string{"", "a b", "a/b", strings.Repeat("x", 65), "é"} {
		if _, err := sc.Put(1, id, []byte("s"), []byte("d")); !errors.Is(err, ErrInvalidSceneID) {
			t.Fatalf("put %q: %v", id, err)
		}
		if _, ok, err := sc.Get(1, id); ok || err != nil {
			t.Fatalf("get %q: %v %v", id, ok, err)
		}
	}
	if _, err := sc.Put(1, strings.Repeat("x", 64), []byte("s"), []byte("d")); err != nil {
		t.Fatalf("64-character id: %v", err)
	}
	s.Close()
	if _, err := sc.Put(1, "hall", []byte("s"), []byte("d")); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("put on a closed store: %v", err)
	}
	if _, _, err := sc.Get(1, "hall"); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("get on a closed store: %v", err)
	}
	if _, err := sc.List(1, "", 10); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("list on a closed store: %v", err)
	}
}

func TestScenesConcurrentFirstPutCreatesOnce(t *testing.T) {
	s := openTest(t, Options{})
	for round := range 20 {
		id := fmt.Sprintf("scene-%d", round)
		var created atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				c, err := s.Scenes().Put(9, id, []byte("s"), []byte(fmt.Sprint(w)))
				if err != nil {
					t.Error(err)
				}
				if c {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		if n := created.Load(); n != 1 {
			t.Fatalf("%s: %d writers were told they created it", id, n)
		}
	}
}
