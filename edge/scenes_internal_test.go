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
	if a.ingest.sceneDec == b.ingest.sceneDec || a.ingest.sceneDec == a.ingest.dec || a.ingest.sceneDec.Limit() != SceneBodyLimit {
		t.Fatalf("scene decompressors: shared %v, the ingest one %v, limit %d", a.ingest.sceneDec == b.ingest.sceneDec, a.ingest.sceneDec == a.ingest.dec, a.ingest.sceneDec.Limit())
	}
	if cap(a.ingest.sceneSlots) != sceneWritesInFlight || cap(b.ingest.sceneSlots) != sceneWritesInFlight {
		t.Fatalf("scene write slots: %d, %d", cap(a.ingest.sceneSlots), cap(b.ingest.sceneSlots))
	}
	for range sceneWritesInFlight {
		a.ingest.sceneSlots <- struct{}{}
	}
	select {
	case b.ingest.sceneSlots <- struct{}{}:
		<-b.ingest.sceneSlots
	default:
		t.Fatal("a server's busy scene slots block another server's")
	}
	if big := newServer(16 << 20); big.ingest.sceneDec != big.ingest.dec {
		t.Fatal("a server with a 16 MiB body limit decodes scenes with another decompressor")
	}
}
