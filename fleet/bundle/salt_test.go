package bundle

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSealSeed(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 32)
	a, _ := NewNodeKey()
	b, _ := NewNodeKey()
	salt := &RevSalt{From: "2027-01-01", ID: SeedID(seed)}
	skipped, err := SealSeed(salt, seed, []Recipient{{"b", b.Public()}, {"a", a.Public()}, {"c", "not base64!"}})
	if err != nil || len(skipped) != 1 || !strings.HasPrefix(skipped[0], "c:") {
		t.Fatalf("skipped %v, %v", skipped, err)
	}
	if len(salt.Sealed) != 2 || salt.Sealed[0].Node != "a" {
		t.Fatalf("sealed %+v", salt.Sealed)
	}
	for _, n := range []struct {
		node string
		key  *NodeKey
	}{{"a", a}, {"b", b}} {
		got, err := OpenSeed(salt, n.node, n.key)
		if err != nil || !bytes.Equal(got, seed) {
			t.Fatalf("%s: %x %v", n.node, got, err)
		}
	}
	// Nowhere in the revision is the seed, in any encoding.
	js, _ := json.Marshal(salt)
	for _, enc := range []string{string(seed), base64.StdEncoding.EncodeToString(seed), "0707070707070707"} {
		if strings.Contains(string(js), enc) {
			t.Fatalf("the revision holds the seed: %s", js)
		}
	}
	// Another node's key, or a key the node replaced, opens nothing.
	if _, err := OpenSeed(salt, "a", b); !errors.Is(err, ErrNotSealedHere) {
		t.Fatalf("a with b's key: %v", err)
	}
	newA, _ := NewNodeKey()
	if _, err := OpenSeed(salt, "a", newA); !errors.Is(err, ErrNotSealedHere) {
		t.Fatalf("a's new key: %v", err)
	}
	// A box moved to another node's entry, or to another day, does not open.
	moved := *salt
	moved.Sealed = []SealedSeed{{Node: "b", Key: NodeKeyID(b.Public()), Box: salt.Sealed[0].Box}}
	if _, err := OpenSeed(&moved, "b", b); err == nil || errors.Is(err, ErrNotSealedHere) {
		t.Fatalf("a's box under b: %v", err)
	}
	later := *salt
	later.From = "2027-02-01"
	if _, err := OpenSeed(&later, "a", a); err == nil || errors.Is(err, ErrNotSealedHere) {
		t.Fatalf("a's box for another day: %v", err)
	}
	// A box of another seed under this seed's id is refused, and so is
	// sealing a seed that is not the revision's.
	other := bytes.Repeat([]byte{8}, 32)
	tmp := &RevSalt{From: salt.From, ID: SeedID(other)}
	if _, err := SealSeed(tmp, other, []Recipient{{"a", a.Public()}}); err != nil {
		t.Fatal(err)
	}
	swapped := &RevSalt{From: salt.From, ID: salt.ID, Sealed: tmp.Sealed}
	if _, err := OpenSeed(swapped, "a", a); err == nil || !strings.Contains(err.Error(), "not the revision's seed") {
		t.Fatalf("another seed's box: %v", err)
	}
	if _, err := SealSeed(salt, other, nil); err == nil {
		t.Fatal("sealed a seed that is not the revision's")
	}
	// The private key survives its round trip.
	raw, _ := a.Bytes()
	a2, err := ParseNodeKey(raw)
	if err != nil || a2.Public() != a.Public() {
		t.Fatalf("parse: %v", err)
	}
}

// A built revision names the seed and holds none of it; Diff shows a new
// seed or day, not the same one again.
func TestBuildSalt(t *testing.T) {
	seed := strings.Repeat("ab", 32)
	b, err := Parse([]byte(`{"projects":[{"id":"shop"}],"visitorSalt":{"seed":"` + seed + `","from":"2027-01-01"}}`))
	if err != nil {
		t.Fatal(err)
	}
	rev, _, err := Build(b, nil, 1, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rev)
	if strings.Contains(string(js), seed) || rev.VisitorSalt == nil || rev.VisitorSalt.From != "2027-01-01" || len(rev.VisitorSalt.ID) != 32 {
		t.Fatalf("revision %s", js)
	}
	if d := strings.Join(Diff(nil, rev), "\n"); !strings.Contains(d, "set-visitor-salt: seed "+rev.VisitorSalt.ID+" from 2027-01-01") {
		t.Fatalf("diff %s", d)
	}
	again, _, _ := Build(b, rev, 2, nil, time.Now())
	if d := Diff(rev, again); len(d) != 0 {
		t.Fatalf("diff of the same seed: %v", d)
	}
}
