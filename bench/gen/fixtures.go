package gen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Fixtures reads the *.json files of dir, in name order, for scenarios that
// replay the sample batches verbatim. It fails when dir holds none.
func Fixtures(dir string) ([][]byte, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var bodies [][]byte
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, b)
	}
	if len(bodies) == 0 {
		return nil, errors.New("gen: no .json fixtures in " + dir)
	}
	return bodies, nil
}

// The committed sample batches (testdata/fixtures at the repository's root)
// are made by
//
//	go run ./bench/cmd/uptimizr-bench fixtures -out testdata/fixtures
//
// and TestCommittedFixtures checks that the files in the repository are
// what the command writes.

// FixtureSet names the committed sample batches: for each batch size, three
// consecutive bodies of one generator (seed 1), so that the later ones
// continue sessions the first opened. They carry no PII-looking text, so that
// a redaction test can tell what it planted.
var FixtureSet = []struct {
	BatchSize int
	Count     int
}{{50, 3}, {200, 3}}

// FixtureName is the file name of body i of the given batch size.
func FixtureName(batchSize, i int) string {
	return fmt.Sprintf("batch%d_%02d.json", batchSize, i)
}

// WriteFixtures writes the sample batches of FixtureSet into dir.
func WriteFixtures(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range FixtureSet {
		g := New(Config{Seed: 1, BatchSize: f.BatchSize, PIIRate: NoPII})
		for i := 0; i < f.Count; i++ {
			if err := os.WriteFile(filepath.Join(dir, FixtureName(f.BatchSize, i)), g.Next(nil), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
