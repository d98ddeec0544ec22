package storage

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/uptimizr/edge/core"
)

// TestDiskFullOnSmallFilesystem runs the store on a real, small tmpfs and
// writes until the free-space floor refuses writes. Every refused commit is
// core.ErrUnavailable (503 upstream), nothing crashes, and after a reopen
// every acknowledged record is there. It needs root (to mount); it is skipped
// elsewhere.
func TestDiskFullOnSmallFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", dir).Run()

	off := false
	// Without the aggregator, which would fold (and delete) the log records
	// this test counts.
	s, err := Open(Options{Dir: dir, MinFreeDisk: 96 << 20, LogCompression: &off, DisableAggregation: true})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	var refused error
	for i := 0; i < 100000 && refused == nil; i++ {
		b := testBatch(9, 200, "s1", "s2")
		switch err := s.Sink().Commit(context.Background(), b); {
		case err == nil:
			acked++
		case errors.Is(err, core.ErrUnavailable):
			refused = err
		default:
			t.Fatalf("commit %d: %v (want success or ErrUnavailable)", i, err)
		}
	}
	if refused == nil {
		t.Fatal("the floor never refused a write")
	}
	if acked == 0 {
		t.Fatal("nothing was written before the floor")
	}
	if err := s.Writable(); err == nil {
		t.Fatal("store reports writable while under the floor")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close on a nearly full disk: %v", err)
	}
	s2, err := Open(Options{Dir: dir, MinFreeDisk: -1, DisableAggregation: true})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	seqs, events := readLog(t, s2, 9)
	if len(seqs) != acked || len(events) != acked*200 {
		t.Fatalf("after reopen %d records / %d events, acknowledged %d records", len(seqs), len(events), acked)
	}
	t.Logf("acknowledged %d batches before the floor refused: %v", acked, refused)
}
