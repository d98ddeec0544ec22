package gen

import (
	"errors"
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
