package edge

import (
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestSceneStateIsPerServer: the scene decompressor and write slots belong
// to a Server, not to the package: two servers share neither, and a server
// whose body limit is at least SceneBodyLimit decodes scenes with its own
// ingest decompressor.
func TestSceneStateIsPerServer(t *testing.T) {
	hasher, err := core.NewVisitorHasher([]byte("scene-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	newServer := func(bodyLimit int) *Server {
		cfg := core.DefaultConfig()
		cfg.BodyLimit = bodyLimit
		s, err := New(&cfg, Deps{Keys: struct{ Keys }{}, Sink: discardSink{}, Hasher: hasher})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newServer(1<<20), newServer(1<<20)
	if a.sceneDec == b.sceneDec || a.sceneDec == a.dec || a.sceneDec.Limit() != SceneBodyLimit {
		t.Fatalf("scene decompressors: shared %v, the ingest one %v, limit %d", a.sceneDec == b.sceneDec, a.sceneDec == a.dec, a.sceneDec.Limit())
	}
	if cap(a.sceneSlots) != sceneWritesInFlight || cap(b.sceneSlots) != sceneWritesInFlight {
		t.Fatalf("scene write slots: %d, %d", cap(a.sceneSlots), cap(b.sceneSlots))
	}
	for range sceneWritesInFlight {
		a.sceneSlots <- struct{}{}
	}
	select {
	case b.sceneSlots <- struct{}{}:
		<-b.sceneSlots
	default:
		t.Fatal("a server's busy scene slots block another server's")
	}
	if big := newServer(16 << 20); big.sceneDec != big.dec {
		t.Fatal("a server with a 16 MiB body limit decodes scenes with another decompressor")
	}
}
