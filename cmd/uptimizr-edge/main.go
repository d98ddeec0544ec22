// Command uptimizr-edge is the Uptimizr Edge collector and its operator CLI.
//
//	uptimizr-edge                       serve; on an empty data dir, in dev mode
//	uptimizr-edge serve [--data-dir D] [--addr HOST:PORT]
//	uptimizr-edge project create ID | project list
//	uptimizr-edge key create --project ID --cap ingest|query|admin | key revoke --project ID KEY_OR_ID | key list --project ID
//	uptimizr-edge channels set --project ID gaze=on … | channels get --project ID
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "uptimizr-edge: "+oneLine(err.Error()))
		os.Exit(1)
	}
}

func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i] + "; " + oneLine(s[i+1:])
		}
	}
	return s
}
