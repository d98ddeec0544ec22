package main

import (
	"flag"
	"fmt"

	"github.com/uptimizr/edge/bench/gen"
)

// runFixtures writes the repository's sample batches (bench/gen.FixtureSet).
func runFixtures(args []string) error {
	fs := flag.NewFlagSet("fixtures", flag.ContinueOnError)
	out := fs.String("out", "testdata/fixtures", "folder to write the sample batches into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := gen.WriteFixtures(*out); err != nil {
		return err
	}
	fmt.Println("sample batches written to", *out)
	return nil
}
