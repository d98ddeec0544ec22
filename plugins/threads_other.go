//go:build !linux

package plugins

import "errors"

var errNoThreadPriority = errors.New("thread priorities are set on Linux only")

func setThreadPriority(int) error { return errNoThreadPriority }

func threadPriority() (int, error) { return 0, errNoThreadPriority }
