package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/uptimizr/edge/storage"
)

// readState is what a kept read scenario's directory remembers, so that a
// later run (-reuse) times the routes on the same data: the keys and the
// week of the events.
type readState struct {
	Ingest, Query string
	From, To      int64
	Sessions      int
}

const readStateFile = "read-state.json"

func saveReadState(dir string, keys storage.NewKeys, p *readPlan) error {
	b, err := json.Marshal(readState{Ingest: keys.Ingest, Query: keys.Query, From: p.from, To: p.to, Sessions: p.sessions})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, readStateFile), b, 0o600)
}

// loadReadState reads a kept directory's state and sets the plan's week and
// sessions to the ones loaded then.
func loadReadState(dir string, p *readPlan) (storage.NewKeys, error) {
	var st readState
	b, err := os.ReadFile(filepath.Join(dir, readStateFile))
	if err != nil {
		return storage.NewKeys{}, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return storage.NewKeys{}, err
	}
	p.from, p.to, p.sessions = st.From, st.To, st.Sessions
	return storage.NewKeys{Ingest: st.Ingest, Query: st.Query}, nil
}

func progress(o ReadOptions) io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

// profileCapture is a CPU profile of the collector being taken.
type profileCapture struct{ done chan error }

// startProfile asks the collector's pprof endpoint for a CPU profile of
// the next seconds, written to path.
func startProfile(ctx context.Context, base, path string, seconds int) *profileCapture {
	pc := &profileCapture{done: make(chan error, 1)}
	go func() {
		pc.done <- fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds), path)
	}()
	return pc
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// finish waits for the profile to be written.
func (pc *profileCapture) finish() error {
	if err := <-pc.done; err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}
