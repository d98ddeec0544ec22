package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/fleet/bundle"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

// fleetCommands are fleet keygen, apply and diff (docs/FLEET.md). apply
// and diff work on one node's data dir: through the running node's
// control socket when it holds the dir, else on the dir directly.
func (c *cli) fleetCommands() *cobra.Command {
	fleet := &cobra.Command{Use: "fleet", Short: "Apply a fleet bundle: projects, keys, channels and plugins declared once"}
	fleet.AddCommand(&cobra.Command{
		Use:   "keygen NAME",
		Short: "Make an ed25519 signing key pair: NAME.key (private, mode 0600) and NAME.pub",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, pub, err := bundle.GenerateKey()
			if err != nil {
				return err
			}
			keyPath, pubPath := args[0]+".key", args[0]+".pub"
			f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(f, priv); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.WriteFile(pubPath, []byte(pub+"\n"), 0o644); err != nil {
				return err
			}
			return c.printJSON(map[string]string{"private": keyPath, "public": pubPath, "publicKey": pub})
		},
	})
	var signWith string
	apply := &cobra.Command{
		Use:   "apply FILE [--sign KEY]",
		Short: "Check a bundle whole and apply it to the node as its next revision; keys it makes are printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.fleetApply(args[0], signWith, false)
		},
	}
	apply.Flags().StringVar(&signWith, "sign", "", "sign the revision with this private key file (fleet keygen)")
	diff := &cobra.Command{
		Use:   "diff FILE",
		Short: "Show what applying a bundle would change on the node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.fleetApply(args[0], "", true)
		},
	}
	fleet.AddCommand(apply, diff)
	return fleet
}

// fleetApply reads and checks the bundle at path, builds the node's next
// revision from it and applies it (or, dry, shows what would change).
func (c *cli) fleetApply(path, signWith string, dry bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b, err := bundle.Parse(data)
	var inv *bundle.Invalid
	if errors.As(err, &inv) {
		for _, p := range inv.Problems {
			fmt.Fprintln(c.errOut, p.String())
		}
		return fmt.Errorf("%s: the bundle has %d problems; nothing was applied", path, len(inv.Problems))
	}
	if err != nil {
		return err
	}
	var key ed25519.PrivateKey
	if signWith != "" {
		text, err := os.ReadFile(signWith)
		if err != nil {
			return err
		}
		if key, err = bundle.ParsePrivateKey(string(text)); err != nil {
			return fmt.Errorf("%s: %w", signWith, err)
		}
	}
	// The modules, by content hash, read from beside the bundle.
	modules := map[string][]byte{}
	hashes := map[string]string{}
	var problems []string
	for i, p := range b.Projects {
		for j, pl := range p.Plugins {
			if _, ok := hashes[pl.Module]; ok {
				continue
			}
			file := pl.Module
			if !filepath.IsAbs(file) {
				file = filepath.Join(filepath.Dir(path), file)
			}
			wasm, err := os.ReadFile(file)
			if err != nil {
				problems = append(problems, fmt.Sprintf("projects[%d].plugins[%d].module: %v", i, j, err))
				continue
			}
			h := bundle.ModuleHash(wasm)
			hashes[pl.Module], modules[h] = h, wasm
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(c.errOut, p)
		}
		return fmt.Errorf("%s: %d plugin modules could not be read; nothing was applied", path, len(problems))
	}
	lastOut, err := c.runOp(&op{Name: "fleet.last"})
	if err != nil {
		return err
	}
	var last fleetLast
	if err := json.Unmarshal(lastOut, &last); err != nil {
		return err
	}
	var prev *bundle.Revision
	if len(last.Signed) > 0 {
		var s bundle.Signed
		if err := json.Unmarshal(last.Signed, &s); err != nil {
			return err
		}
		if prev, err = bundle.Open(&s, nil); err != nil { // the node checked it when it applied it
			return err
		}
	}
	rev, secrets, err := bundle.Build(b, prev, last.Revision+1, hashes, time.Now())
	if err != nil {
		return err
	}
	signed, err := bundle.Seal(rev, key)
	if err != nil {
		return err
	}
	sb, _ := json.Marshal(signed)
	o := &op{Name: "fleet.apply", Revision: sb, Modules: modules, Dry: dry}
	out, err := c.runOp(o)
	if err != nil {
		return err
	}
	var res fleetApplied
	if err := json.Unmarshal(out, &res); err != nil {
		return err
	}
	if dry {
		return c.printJSON(res)
	}
	for _, ch := range res.Changes {
		fmt.Fprintln(c.errOut, ch.String())
	}
	if secrets == nil {
		secrets = map[string]string{}
	}
	// Shown this once: only their hashes are kept.
	return c.printJSON(struct {
		Revision uint64            `json:"revision"`
		Keys     map[string]string `json:"keys"`
	}{res.Revision, secrets})
}

// fleetLast is fleet.last's answer: the node's last revision, as signed.
type fleetLast struct {
	Revision uint64          `json:"revision"`
	Signed   json.RawMessage `json:"signed,omitempty"`
}

// fleetApplied is fleet.apply's answer.
type fleetApplied struct {
	Revision uint64           `json:"revision"`
	Changes  []storage.Change `json:"changes"`
	DryRun   bool             `json:"dryRun,omitempty"`
}

// runFleet runs the fleet operations on a node.
func (o *op) runFleet(env *opEnv) (any, error) {
	switch o.Name {
	case "fleet.last":
		last, ok, err := env.reg.LastFleetRevision()
		if err != nil || !ok {
			return fleetLast{}, err
		}
		return fleetLast{last.Number, last.Signed}, nil
	case "fleet.apply":
		return o.fleetApply(env)
	}
	return nil, fmt.Errorf("unknown operation %q", o.Name)
}

// fleetApply checks a signed revision (its signature, when the node has
// COLLECTOR_CONTROL_PUBKEY; every plugin, as an upload) and applies it:
// the registry in one transaction, then each project's plugin chain. A
// revision refused leaves the node as it was.
func (o *op) fleetApply(env *opEnv) (any, error) {
	var s bundle.Signed
	if err := json.Unmarshal(o.Revision, &s); err != nil {
		return nil, fmt.Errorf("fleet apply: %w", err)
	}
	pub := env.controlPub
	if o.Dry {
		pub = nil // a diff changes nothing: it needs no signature
	}
	rev, err := bundle.Open(&s, pub)
	if err != nil {
		return nil, fmt.Errorf("fleet apply: revision refused: %w", err)
	}
	if err := unsupported(rev); err != nil {
		return nil, err
	}
	want := make([]storage.DesiredProject, 0, len(rev.Projects))
	for _, p := range rev.Projects {
		dp := storage.DesiredProject{ID: p.ID, Channels: p.Channels}
		for _, k := range p.Keys {
			h, err := storage.ParseKeyHash(k.Hash)
			if err != nil {
				return nil, err
			}
			dp.Keys = append(dp.Keys, storage.DesiredKey{Name: k.Name, Caps: k.Caps, Hash: h})
		}
		want = append(want, dp)
	}
	if o.Dry {
		changes, err := env.reg.Plan(want)
		if err != nil {
			return nil, err
		}
		pc, err := o.pluginChanges(env, rev, false)
		if err != nil {
			return nil, err
		}
		return fleetApplied{rev.Number, append(append([]storage.Change{}, changes...), pc...), true}, nil
	}
	// Every plugin that would change passes an upload's checks first.
	if _, err := o.pluginChanges(env, rev, false); err != nil {
		return nil, err
	}
	changes, err := env.reg.Apply(want, storage.FleetRevision{Number: rev.Number, Signed: o.Revision})
	if err != nil {
		return nil, err
	}
	pc, err := o.pluginChanges(env, rev, true)
	if err != nil {
		return nil, fmt.Errorf("fleet apply: revision %d's registry is applied, its plugins not all: %w", rev.Number, err)
	}
	return fleetApplied{Revision: rev.Number, Changes: append(append([]storage.Change{}, changes...), pc...)}, nil
}

// pluginChanges lists (and, with apply, makes) the changes to each
// project's plugin chain that rev states: a new version for an entry whose
// module, config or policy differ from the live version's, the removal of
// a plugin the chain no longer has, the order. Without apply, every new
// version is checked as an upload is.
func (o *op) pluginChanges(env *opEnv, rev *bundle.Revision, apply bool) ([]storage.Change, error) {
	var out []storage.Change
	var mgr *plugins.Manager
	ctx := context.Background()
	manager := func() (*plugins.Manager, error) {
		if mgr != nil {
			return mgr, nil
		}
		m, err := env.plugins()
		mgr = m
		return m, err
	}
	for _, p := range rev.Projects {
		var have []core.PluginRecord
		proj := env.reg.Project(p.ID)
		if proj != nil && (len(p.Plugins) > 0 || apply) {
			m, err := manager()
			if err != nil {
				return nil, err
			}
			if have, err = m.List(proj.Num); err != nil {
				return nil, err
			}
		}
		live := map[string]*core.PluginVersion{}
		for i := range have {
			if v := have[i].Version(have[i].Active); v != nil {
				live[have[i].Name] = v
			}
		}
		names := make([]string, 0, len(p.Plugins))
		for _, pl := range p.Plugins {
			names = append(names, pl.Name)
			config := []byte(pl.Config)
			if len(config) == 0 {
				config = []byte("{}")
			}
			if v := live[pl.Name]; v != nil && v.Module == pl.Module && v.Policy == pl.Policy && sameJSON(v.Config, config) {
				continue
			}
			wasm, ok := o.Modules[pl.Module]
			if !ok || bundle.ModuleHash(wasm) != pl.Module {
				return nil, fmt.Errorf("project %s plugin %s: module %s was not sent", p.ID, pl.Name, pl.Module)
			}
			if env.moduleMiB > 0 && len(wasm) > env.moduleMiB<<20 {
				return nil, fmt.Errorf("project %s plugin %s: %w", p.ID, pl.Name, env.moduleTooLarge(len(wasm)))
			}
			m, err := manager()
			if err != nil {
				return nil, err
			}
			out = append(out, storage.Change{Op: "set-plugin", Project: p.ID, Key: pl.Name, Detail: "module " + pl.Module[:12] + ", policy " + pl.Policy})
			switch {
			case apply:
				_, err = m.Upload(ctx, proj.Num, p.ID, pl.Name, wasm, config, pl.Policy)
			default:
				err = m.Check(ctx, p.ID, pl.Name, wasm, config, pl.Policy)
			}
			if err != nil {
				return nil, fmt.Errorf("project %s plugin %s: %w", p.ID, pl.Name, err)
			}
		}
		wanted := map[string]bool{}
		for _, n := range names {
			wanted[n] = true
		}
		for _, h := range have {
			if !wanted[h.Name] && h.Active != 0 {
				out = append(out, storage.Change{Op: "remove-plugin", Project: p.ID, Key: h.Name})
				if apply {
					if err := mgr.Remove(ctx, proj.Num, h.Name); err != nil {
						return nil, err
					}
				}
			}
		}
		if apply && len(names) > 1 {
			if err := mgr.SetOrder(ctx, proj.Num, names); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// parseControlPub reads COLLECTOR_CONTROL_PUBKEY (nil when unset).
func parseControlPub(cfg *core.Config) (ed25519.PublicKey, error) {
	if strings.TrimSpace(cfg.ControlPubKey) == "" {
		return nil, nil
	}
	return bundle.ParsePublicKey(cfg.ControlPubKey)
}

// unsupported refuses a revision with settings this node does not apply
// yet, rather than taking it and ignoring them.
func unsupported(rev *bundle.Revision) error {
	var what []string
	for _, p := range rev.Projects {
		if p.RawRetention != nil {
			what = append(what, "projects "+p.ID+": rawRetention")
		}
		if p.RateLimit != nil {
			what = append(what, "projects "+p.ID+": rateLimit")
		}
	}
	if rev.VisitorSalt != nil {
		what = append(what, "visitorSalt")
	}
	if len(what) > 0 {
		return fmt.Errorf("fleet apply: this node does not apply %s yet (docs/FLEET.md, \"Not yet\"); nothing was applied", strings.Join(what, ", "))
	}
	return nil
}
