package plugins

import (
	"context"
	"fmt"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/internal/jsonvalue"
)

// QuarantineReader is what replay needs of the quarantine store.
type QuarantineReader interface {
	Get(pnum uint32, id string) (core.QuarantineEntry, *core.Batch, error)
	Delete(pnum uint32, id string) error
}

// ReplayResult tells what became of a replayed batch.
type ReplayResult struct {
	Accepted    int `json:"accepted"`
	Filtered    int `json:"filtered"`
	Quarantined int `json:"quarantined"`
}

// Replay runs a quarantined batch through the project's current chain and
// commits what it keeps, then deletes the quarantine entry. The entry is
// deleted only after the commit, so a crash in between can replay a batch
// twice but never lose it. A batch that fails again is quarantined again
// (under a new id) and the old entry is removed.
func (m *Manager) Replay(ctx context.Context, q QuarantineReader, sink core.Sink, project core.Project, id string) (ReplayResult, error) {
	var res ReplayResult
	_, b, err := q.Get(project.ProjectNum(), id)
	if err != nil {
		return res, err
	}
	b.ProjectID, b.ProjectNum = project.ProjectID(), project.ProjectNum()
	b.Info = jsonvalue.StoredInfo(len(b.Events), b.JSON, project.ProjectID(), project.Channels())
	if err := m.filter.Apply(ctx, b); err != nil {
		return res, err
	}
	if err := sink.Commit(ctx, b); err != nil {
		return res, err
	}
	res = ReplayResult{Accepted: len(b.Events), Filtered: b.Filtered, Quarantined: b.Quarantined}
	if err := q.Delete(project.ProjectNum(), id); err != nil {
		return res, fmt.Errorf("replayed, but the entry could not be removed: %w", err)
	}
	return res, nil
}
