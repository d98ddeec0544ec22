package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/uptimizr/edge/core"
)

// nsScene is the namespace of scene representations:
//
//	g <projectNum:4> <sceneID> 0x00   list summary (small, kept in the LSM tree)
//	g <projectNum:4> <sceneID> 0x01   the representation document
//
// The part byte sorts below every byte a scene id may contain, so a prefix
// scan of a project yields its scenes in scene-id order, each summary
// directly before its document.
const nsScene = 'g'

const (
	scenePartSummary  = 0x00
	scenePartDocument = 0x01
)

// MaxSceneIDLen is the longest scene id the store accepts.
const MaxSceneIDLen = 64

// ErrInvalidSceneID reports a scene id outside 1–64 characters of
// A-Z a-z 0-9 . _ : - (the same alphabet as project ids).
var ErrInvalidSceneID = errors.New("invalid scene id: use 1–64 characters of A-Z a-z 0-9 . _ : -")

// Scenes keeps one representation document per scene per project, with a
// small summary of it for listings. The store does not interpret either: the
// caller validates the document and encodes both.
type Scenes struct{ st *Store }

// Scenes returns the scene-representation store.
func (s *Store) Scenes() *Scenes { return &Scenes{st: s} }

// sceneLocks serialise writers of the same scene, so that exactly one of two
// concurrent first writes reports it created. Writes are rare; striping keeps
// different scenes apart.
var (
	sceneLocks    [64]sync.Mutex
	sceneLockSeed = maphash.MakeSeed()
)

func sceneLock(projectNum uint32, sceneID string) *sync.Mutex {
	var h maphash.Hash
	h.SetSeed(sceneLockSeed)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], projectNum)
	h.Write(n[:])
	h.WriteString(sceneID)
	return &sceneLocks[h.Sum64()%uint64(len(sceneLocks))]
}

func scenePrefix(projectNum uint32) []byte {
	k := make([]byte, 5, 5+MaxSceneIDLen+1)
	k[0] = nsScene
	binary.BigEndian.PutUint32(k[1:], projectNum)
	return k
}

func sceneKey(projectNum uint32, sceneID string, part byte) []byte {
	return append(append(scenePrefix(projectNum), sceneID...), part)
}

// validSceneID reports whether id may name a scene.
func validSceneID(id string) bool { return ValidProjectID(id) }

func (sc *Scenes) readable() error {
	if sc.st.closed.Load() {
		return fmt.Errorf("%w: store is closed", core.ErrUnavailable)
	}
	return nil
}

// Put stores doc as the representation of the scene in the project, with
// summary as its listing row, replacing any earlier one. created reports
// whether the scene had none. When the store cannot take writes the error
// wraps core.ErrUnavailable and nothing is changed.
func (sc *Scenes) Put(projectNum uint32, sceneID string, summary, doc []byte) (created bool, err error) {
	if !validSceneID(sceneID) {
		return false, ErrInvalidSceneID
	}
	adm, err := sc.st.admitWrite(2 * (len(summary) + len(doc) + 64))
	if err != nil {
		return false, err
	}
	defer adm.done()
	mu := sceneLock(projectNum, sceneID)
	mu.Lock()
	defer mu.Unlock()
	sk := sceneKey(projectNum, sceneID, scenePartSummary)
	dk := sceneKey(projectNum, sceneID, scenePartDocument)
	err = sc.st.db.Update(func(txn *badger.Txn) error {
		switch _, err := txn.Get(sk); {
		case errors.Is(err, badger.ErrKeyNotFound):
			created = true
		case err != nil:
			return err
		}
		// Badger may keep the slices until commit: hand it copies.
		if err := txn.Set(sk, append([]byte(nil), summary...)); err != nil {
			return err
		}
		return txn.Set(dk, append([]byte(nil), doc...))
	})
	if err != nil {
		if errors.Is(err, badger.ErrDBClosed) {
			return false, fmt.Errorf("%w: store is closed", core.ErrUnavailable)
		}
		return false, fmt.Errorf("storage: put scene: %w", err)
	}
	return created, nil
}

// Get returns the representation document of the scene in the project; ok is
// false when there is none (or the id is not a valid scene id).
func (sc *Scenes) Get(projectNum uint32, sceneID string) (doc []byte, ok bool, err error) {
	if !validSceneID(sceneID) {
		return nil, false, nil
	}
	if err := sc.readable(); err != nil {
		return nil, false, err
	}
	err = sc.st.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(sceneKey(projectNum, sceneID, scenePartDocument))
		if err != nil {
			return err
		}
		doc, err = item.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("storage: get scene: %w", err)
	}
	return doc, true, nil
}

// List returns the summaries of the project's scenes in scene-id order,
// starting after the scene id after ("" = from the first), at most limit of
// them (limit ≤ 0 means no limit).
func (sc *Scenes) List(projectNum uint32, after string, limit int) ([][]byte, error) {
	if err := sc.readable(); err != nil {
		return nil, err
	}
	prefix := scenePrefix(projectNum)
	start := prefix
	if after != "" {
		// The first key past every part of after: after itself followed by
		// a byte above both part bytes but below every id character.
		start = append(append(append([]byte(nil), prefix...), after...), scenePartDocument+1)
	}
	var out [][]byte
	err := sc.st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) < len(prefix)+2 || k[len(k)-1] != scenePartSummary {
				continue
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, v)
			if limit > 0 && len(out) >= limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: list scenes: %w", err)
	}
	return out, nil
}
