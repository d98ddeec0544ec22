package ingestlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
)

var errNotExist = fs.ErrNotExist

func isEOF(err error) bool { return errors.Is(err, io.EOF) }

// load reads segment id through and indexes its good frames, mending it
// first if need be: the last segment's torn end is cut back; any other bad
// bytes move the segment aside and rewrite its good frames (see the
// package doc). Read-only, nothing is mended: the good frames are indexed
// where they lie.
func (l *Log) load(id uint64, last bool) error {
	path := filepath.Join(l.dir, segmentName(id))
	data, err := l.fs.ReadFile(path)
	if err != nil {
		if l.ro && errors.Is(err, errNotExist) {
			return nil // deleted by the serving process since the listing
		}
		return fmt.Errorf("ingestlog: read segment: %w", err)
	}
	sc := scanSegment(data, resyncBudget(int64(len(data))))
	seg := &segment{id: id, path: path}
	frames := sc.frames
	switch {
	case sc.good == int64(len(data)):
		seg.size = sc.good
	case l.ro:
		seg.size = int64(len(data))
	case !sc.resynced && (last || len(frames) == 0 && isMagicPrefix(data)):
		// A write cut short by a crash: what follows the last good frame
		// was never acknowledged (with sync writes), or was lost with the
		// page cache.
		good := sc.good
		if good < int64(len(segmentMagic)) {
			good = 0
		}
		l.log.Warn("ingest log segment ends in a torn frame (a write cut short); cut back to its last good frame",
			"segment", path, "good_bytes", good, "lost_bytes", int64(len(data))-good)
		if err := l.fs.Truncate(path, good); err != nil {
			return fmt.Errorf("ingestlog: cut back segment: %w", err)
		}
		seg.size = good
	default:
		moved, rewritten, err := l.moveAside(id, path, data, frames)
		if err != nil {
			return err
		}
		args := []any{"segment", path, "kept_as", moved, "records_recovered", len(frames), "bad_bytes", sc.bad}
		if sc.gaveUp {
			args = append(args, "search_stopped_at", sc.giveUpAt)
		}
		l.log.Error("ingest log segment is damaged: moved aside with its bytes as they were; the records whose frames check out are kept. Look at it, then delete it", args...)
		l.damaged.Add(1)
		frames, seg.size = rewritten, rewrittenSize(rewritten)
	}
	if seg.f, err = l.fs.Open(path); err != nil {
		return fmt.Errorf("ingestlog: open segment: %w", err)
	}
	for _, f := range frames {
		l.index(seg, f.pnum, f.seq, f.off, f.n)
	}
	l.segs = append(l.segs, seg)
	return nil
}

// isMagicPrefix: data is a segment's start cut short (a segment created
// just before a crash).
func isMagicPrefix(data []byte) bool {
	return len(data) <= len(segmentMagic) && string(data) == segmentMagic[:len(data)]
}

func rewrittenSize(frames []frame) int64 {
	if len(frames) == 0 {
		return int64(len(segmentMagic))
	}
	f := frames[len(frames)-1]
	return f.off + frameHeader + int64(f.n)
}

// moveAside keeps the damaged segment at path under damaged/ and puts in its
// place a segment of its good frames, in an order that a crash at any point
// leaves one or the other whole under path: the original's second name is
// durable before the rewrite replaces it, and the rewrite is durable before
// its rename. It returns the name the bytes are kept under and the frames
// as they lie in the rewrite.
func (l *Log) moveAside(id uint64, path string, data []byte, frames []frame) (string, []frame, error) {
	ddir := filepath.Join(l.dir, DamagedDir)
	if err := l.fs.MkdirAll(ddir); err != nil {
		return "", nil, fmt.Errorf("ingestlog: create %s: %w", ddir, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return "", nil, fmt.Errorf("ingestlog: sync %s: %w", l.dir, err)
	}
	names, err := l.fs.ReadDir(ddir)
	if err != nil {
		return "", nil, fmt.Errorf("ingestlog: read %s: %w", ddir, err)
	}
	// A name no earlier move used (an earlier move cut short may have
	// linked the same file already: a second name for it costs nothing).
	moved := ""
	for k := len(names) + 1; ; k++ {
		moved = filepath.Join(ddir, fmt.Sprintf("%016x-%s%s", id, strconv.Itoa(k), segmentSuffix))
		if err = l.fs.Link(path, moved); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", nil, fmt.Errorf("ingestlog: keep damaged segment: %w", err)
	}
	if err := l.fs.SyncDir(ddir); err != nil {
		return "", nil, fmt.Errorf("ingestlog: sync %s: %w", ddir, err)
	}
	buf := make([]byte, 0, len(data))
	buf = append(buf, segmentMagic...)
	out := make([]frame, 0, len(frames))
	for _, f := range frames {
		out = append(out, frame{pnum: f.pnum, seq: f.seq, off: int64(len(buf)), n: f.n})
		buf = append(buf, data[f.off:f.off+frameHeader+int64(f.n)]...)
	}
	tmp := path + tmpSuffix
	tf, err := l.fs.Create(tmp)
	if err != nil {
		return "", nil, fmt.Errorf("ingestlog: rewrite damaged segment: %w", err)
	}
	_, err = tf.WriteAt(buf, 0)
	if err == nil {
		err = tf.Sync()
	}
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, path)
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		l.fs.Remove(tmp)
		return "", nil, fmt.Errorf("ingestlog: rewrite damaged segment: %w", err)
	}
	return moved, out, nil
}
