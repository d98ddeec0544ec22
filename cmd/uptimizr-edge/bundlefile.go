package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uptimizr/edge/fleet/bundle"
)

// bundleFile keeps a node on a bundle file (COLLECTOR_BUNDLE), for
// operators with their own config management: the file is applied at
// start, and again when it changes (its and its modules' sizes and
// modification times looked at every 2 s) or on SIGHUP,
// with the same checks, the same switch and the same signature rule as a
// published revision: with COLLECTOR_CONTROL_PUBKEY, FILE.sig (fleet sign)
// must verify over the file and its modules. A file that does not check
// is logged and counted, and the node keeps the revision it has.
type bundleFile struct {
	path    string
	env     *opEnv
	log     *slog.Logger
	mu      sync.Mutex
	last    string // the digest last applied
	refused int64
	applied uint64
	// stamp is the size and modification time of the file and of the
	// modules it named when last read, paths the modules': unchanged, the
	// periodic look reads nothing more.
	stamp string
	paths []string
}

// stampOf is the size and modification time of each file ("" when one is
// missing, so it never matches).
func stampOf(files []string) string {
	var b strings.Builder
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil {
			return ""
		}
		fmt.Fprintf(&b, "%s %d %d\n", p, st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// bundleCheckEvery is how often the file is looked at.
const bundleCheckEvery = 2 * time.Second

func startBundleFile(ctx context.Context, path string, env *opEnv, log *slog.Logger) *bundleFile {
	f := &bundleFile{path: path, env: env, log: log.With("component", "fleet", "bundle", path)}
	if last, ok, err := env.reg.LastFleetRevision(); err == nil && ok {
		f.applied = last.Number
		if rev, err := openStored(last.Signed); err == nil {
			f.last = rev.Source
		}
	}
	f.load(true)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		t := time.NewTicker(bundleCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				f.log.Info("SIGHUP: reading the bundle again")
				f.load(true)
				continue
			case <-t.C:
			}
			f.load(false)
		}
	}()
	return f
}

func (f *bundleFile) stats() (applied uint64, refused int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied, f.refused
}

// load reads, checks and, when it changed, applies the file; unless
// forced, only when the file or a module it names has another size or
// modification time than when last read.
func (f *bundleFile) load(force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	head := []string{f.path}
	if f.env.controlPub != nil {
		head = append(head, f.path+".sig")
	}
	// Stamped before they are read: a change while they are read shows
	// at the next look.
	headStamp := stampOf(head)
	if !force && headStamp != "" && headStamp+stampOf(f.paths) == f.stamp {
		return
	}
	f.stamp = ""
	refuse := func(err error) {
		f.refused++
		f.log.Warn("bundle file not applied; keeping the last revision applied", "err", err, "revision", f.applied)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		refuse(err)
		return
	}
	b, err := bundle.Parse(data)
	if err != nil {
		f.stamp = headStamp + stampOf(f.paths) // the same file would be refused again
		refuse(err)
		return
	}
	f.paths = f.paths[:0]
	for _, p := range b.Projects {
		for _, pl := range p.Plugins {
			file := pl.Module
			if !filepath.IsAbs(file) {
				file = filepath.Join(filepath.Dir(f.path), file)
			}
			f.paths = append(f.paths, file)
		}
	}
	sort.Strings(f.paths)
	f.paths = slices.Compact(f.paths)
	stamp := headStamp + stampOf(f.paths)
	modules, hashes, problems := readModules(filepath.Dir(f.path), b)
	if len(problems) > 0 {
		refuse(errors.New(strings.Join(problems, "; ")))
		return
	}
	for _, p := range b.Projects {
		for _, k := range p.Keys {
			if k.Hash == "" {
				f.stamp = stamp
				refuse(fmt.Errorf("project %s key %s: a bundle a node loads gives each key's hash (fleet key makes one)", p.ID, k.Name))
				return
			}
		}
	}
	digest := bundle.Digest(data, hashes)
	source := bundle.ModuleHash(digest)
	if source == f.last {
		f.stamp = stamp
		return // applied already
	}
	if f.env.controlPub != nil {
		sig, err := os.ReadFile(f.path + ".sig")
		if err == nil {
			err = bundle.VerifyFile(digest, string(sig), f.env.controlPub)
		}
		if err != nil {
			f.stamp = stamp // the same files would be refused again
			refuse(fmt.Errorf("%s.sig: %w", f.path, err))
			return
		}
	}
	b.Source = source
	rev, _, err := bundle.Build(b, nil, f.applied+1, hashes, time.Now())
	if err != nil {
		refuse(err)
		return
	}
	sealed, err := bundle.Seal(rev, nil)
	if err != nil {
		refuse(err)
		return
	}
	raw, _ := marshalSigned(sealed)
	env := *f.env
	env.controlPub = nil // the file's signature is checked above
	o := &op{Name: "fleet.apply", Revision: raw, Modules: modules}
	if b.VisitorSalt != nil {
		o.Seed = b.VisitorSalt.Seed // the node's own file: the seed as it is
	}
	v, err := o.runFleet(&env)
	if err != nil {
		refuse(err)
		return
	}
	res := v.(fleetApplied)
	f.applied, f.last, f.stamp = res.Revision, source, stamp
	f.log.Info("bundle file applied", "revision", res.Revision, "changes", len(res.Changes))
}
