package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
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
	"github.com/uptimizr/edge/fleet/control"
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
	fleet.AddCommand(&cobra.Command{
		Use:   "key CAP[,CAP…]",
		Short: "Make an API key for a bundle that gives keys by hash: prints the key (keep it; shown once) and its hash (for the bundle)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			caps, err := core.ParseCapabilities(args[0])
			if err != nil {
				return err
			}
			secret, err := core.NewKeySecret(caps)
			if err != nil {
				return err
			}
			h := core.HashKeySecret([]byte(secret))
			return c.printJSON(map[string]string{"key": secret, "hash": hex.EncodeToString(h[:]), "caps": caps.String()})
		},
	})
	var signFileWith string
	sign := &cobra.Command{
		Use:   "sign FILE --sign KEY",
		Short: "Sign a bundle file and its modules for nodes that load it (COLLECTOR_BUNDLE with COLLECTOR_CONTROL_PUBKEY): writes FILE.sig",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := readSigningKey(signFileWith)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			_, _, hashes, err := c.readBundle(args[0])
			if err != nil {
				return err
			}
			sig := bundle.SignFile(bundle.Digest(data, hashes), key)
			if err := os.WriteFile(args[0]+".sig", []byte(sig), 0o644); err != nil {
				return err
			}
			return c.printJSON(map[string]string{"signature": args[0] + ".sig"})
		},
	}
	sign.Flags().StringVar(&signFileWith, "sign", "", "the private key file (fleet keygen)")
	_ = sign.MarkFlagRequired("sign")
	fleet.AddCommand(sign)
	var signWith, controlURL string
	apply := &cobra.Command{
		Use:   "apply FILE [--sign KEY] [--control nats://…]",
		Short: "Check a bundle whole and publish it as the fleet's next revision (--control), or apply it to the node (--data-dir); keys it makes are printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if controlURL != "" {
				return c.fleetPublish(args[0], signWith, controlURL, false)
			}
			return c.fleetApply(args[0], signWith, false)
		},
	}
	apply.Flags().StringVar(&signWith, "sign", "", "sign the revision with this private key file (fleet keygen)")
	diff := &cobra.Command{
		Use:   "diff FILE [--control nats://…]",
		Short: "Show what applying a bundle would change: on the fleet's current revision (--control), or on the node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if controlURL != "" {
				return c.fleetPublish(args[0], "", controlURL, true)
			}
			return c.fleetApply(args[0], "", true)
		},
	}
	status := &cobra.Command{
		Use:   "status --control nats://…",
		Short: "List the nodes following the control plane: their revision, last heartbeat and forward lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := control.Dial(controlURL, false, nil)
			if err != nil {
				return err
			}
			defer client.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nodes, err := client.Nodes(ctx)
			if err != nil {
				return err
			}
			var current uint64
			if s, _, err := client.Latest(ctx); err == nil {
				if rev, err := bundle.Open(s, nil); err == nil {
					current = rev.Number
				}
			}
			if nodes == nil {
				nodes = []control.Heartbeat{}
			}
			return c.printJSON(struct {
				Revision uint64              `json:"revision"`
				Nodes    []control.Heartbeat `json:"nodes"`
			}{current, nodes})
		},
	}
	_ = status.MarkFlagRequired("control")
	for _, cmd := range []*cobra.Command{apply, diff, status} {
		cmd.Flags().StringVar(&controlURL, "control", "", "the fleet's control plane: nats://HOST:PORT[,…]")
	}
	fleet.AddCommand(apply, diff, status)
	return fleet
}

// readBundle reads and checks the bundle at path and the modules it names
// (from beside it), listing every problem on stderr.
func (c *cli) readBundle(path string) (*bundle.Bundle, map[string][]byte, map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := bundle.Parse(data)
	var inv *bundle.Invalid
	if errors.As(err, &inv) {
		for _, p := range inv.Problems {
			fmt.Fprintln(c.errOut, p.String())
		}
		return nil, nil, nil, fmt.Errorf("%s: the bundle has %d problems; nothing was applied", path, len(inv.Problems))
	}
	if err != nil {
		return nil, nil, nil, err
	}
	modules, hashes, problems := readModules(filepath.Dir(path), b)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(c.errOut, p)
		}
		return nil, nil, nil, fmt.Errorf("%s: %d plugin modules could not be read; nothing was applied", path, len(problems))
	}
	return b, modules, hashes, nil
}

func readSigningKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	key, err := bundle.ParsePrivateKey(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// fleetPublish checks the bundle whole (every plugin as an upload is, here)
// and publishes it to the control plane as the fleet's next revision, or,
// dry, shows what it would change from the current one.
func (c *cli) fleetPublish(path, signWith, url string, dry bool) error {
	b, modules, hashes, err := c.readBundle(path)
	if err != nil {
		return err
	}
	key, err := readSigningKey(signWith)
	if err != nil {
		return err
	}
	cfg, err := c.config()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Every plugin through an upload's checks, on a host of this command.
	if len(modules) > 0 {
		dir, err := os.MkdirTemp("", "uptimizr-fleet-check-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		host, err := newPluginHost(ctx, &cfg, dir, nil)
		if err != nil {
			return err
		}
		defer host.Close(ctx)
		mgr := plugins.NewManager(host, nil, nil, nil)
		var problems []string
		for i, p := range b.Projects {
			for j, pl := range p.Plugins {
				if err := mgr.Check(ctx, p.ID, pl.Name, modules[hashes[pl.Module]], []byte(pl.Config), pl.Policy); err != nil {
					problems = append(problems, fmt.Sprintf("projects[%d].plugins[%d] (%s): %v", i, j, pl.Name, err))
				}
			}
		}
		if len(problems) > 0 {
			for _, p := range problems {
				fmt.Fprintln(c.errOut, p)
			}
			return fmt.Errorf("%s: %d plugins failed an upload's checks; nothing was published", path, len(problems))
		}
	}
	client, err := control.Dial(url, false, nil)
	if err != nil {
		return err
	}
	defer client.Close()
	latest, seq, err := client.Latest(ctx)
	if err != nil && !errors.Is(err, control.ErrNoRevision) {
		return err
	}
	var prev *bundle.Revision
	var prevNumber uint64 // the highest number published, valid or not
	if latest != nil {
		var pub ed25519.PublicKey
		if key != nil {
			pub = key.Public().(ed25519.PublicKey)
		}
		if prev, err = bundle.Open(latest, pub); err != nil {
			// Not signed with this key (written into the bucket by someone
			// else?): build on the newest one that is, and replace it.
			fmt.Fprintf(c.errOut, "the latest published revision is refused (%v); building on the newest one signed with this key\n", err)
			prev = nil
			hist, herr := client.History(ctx)
			if herr != nil {
				return herr
			}
			var newest uint64
			for _, h := range hist {
				if r, err := bundle.Open(h, pub); err == nil {
					if prev == nil {
						prev = r
					}
					newest = max(newest, r.Number)
				} else if r, err := bundle.Open(h, nil); err == nil {
					newest = max(newest, r.Number) // number past it: nodes take only a higher one
				}
			}
			if prev == nil {
				return fmt.Errorf("no revision the bucket holds is signed with this key; nothing was published")
			}
			prevNumber = newest
		}
	}
	next := uint64(1)
	if prev != nil {
		next = max(prev.Number, prevNumber) + 1
	}
	rev, secrets, err := bundle.Build(b, prev, next, hashes, time.Now())
	if err != nil {
		return err
	}
	if dry {
		return c.printJSON(struct {
			Revision uint64   `json:"revision"`
			Changes  []string `json:"changes"`
			DryRun   bool     `json:"dryRun"`
		}{next, bundle.Diff(prev, rev), true})
	}
	if rev.VisitorSalt != nil {
		if err := c.sealSalt(ctx, client, b, rev); err != nil {
			return err
		}
	}
	signed, err := bundle.Seal(rev, key)
	if err != nil {
		return err
	}
	if _, err := client.Publish(ctx, signed, modules, seq); err != nil {
		return err
	}
	for _, ch := range bundle.Diff(prev, rev) {
		fmt.Fprintln(c.errOut, ch)
	}
	if secrets == nil {
		secrets = map[string]string{}
	}
	return c.printJSON(struct {
		Revision uint64            `json:"revision"`
		Keys     map[string]string `json:"keys"`
	}{rev.Number, secrets})
}

// sealSalt seals the bundle's visitor seed to every node that has
// reported its sealing key (the revision carries it so, never as it is),
// and says which; none is an error, and nothing is published.
func (c *cli) sealSalt(ctx context.Context, client *control.Client, b *bundle.Bundle, rev *bundle.Revision) error {
	seed, err := bundle.ParseSeed(b.VisitorSalt.Seed)
	if err != nil {
		return err
	}
	defer core.Wipe(seed)
	nodes, err := client.Nodes(ctx)
	if err != nil {
		return err
	}
	var to []bundle.Recipient
	for _, n := range nodes {
		if n.SealKey != "" {
			to = append(to, bundle.Recipient{Node: n.Node, Key: n.SealKey})
		}
	}
	if len(to) == 0 {
		return errors.New("visitorSalt: no node has reported its sealing key to the control plane (nodes report it in their heartbeat once they follow it): nothing was published")
	}
	skipped, err := bundle.SealSeed(rev.VisitorSalt, seed, to)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(rev.VisitorSalt.Sealed))
	for _, s := range rev.VisitorSalt.Sealed {
		names = append(names, s.Node)
	}
	fmt.Fprintf(c.errOut, "visitorSalt: seed %s from %s sealed to %d nodes: %s\n", rev.VisitorSalt.ID, rev.VisitorSalt.From, len(names), strings.Join(names, ", "))
	for _, s := range skipped {
		fmt.Fprintf(c.errOut, "visitorSalt: not sealed to %s\n", s)
	}
	return nil
}

// fleetApply reads and checks the bundle at path, builds the node's next
// revision from it and applies it (or, dry, shows what would change).
func (c *cli) fleetApply(path, signWith string, dry bool) error {
	b, modules, hashes, err := c.readBundle(path)
	if err != nil {
		return err
	}
	key, err := readSigningKey(signWith)
	if err != nil {
		return err
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
	if b.VisitorSalt != nil && !dry {
		o.Seed = b.VisitorSalt.Seed // to this node (its control socket is its owner's only)
	}
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
	// SaltTaken: the node took the revision's visitor seed (the follower
	// then replaces its sealing key).
	SaltTaken bool `json:"saltTaken,omitempty"`
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
	want := make([]storage.DesiredProject, 0, len(rev.Projects))
	for _, p := range rev.Projects {
		dp := storage.DesiredProject{ID: p.ID, Channels: p.Channels, RawRetention: p.RawRetention}
		if r := p.RateLimit; r != nil {
			w := time.Duration(r.Window)
			if w <= 0 {
				w = time.Minute
			}
			dp.RateLimit = &storage.RateLimit{Max: r.Max, Window: w}
		}
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
		if rs := rev.VisitorSalt; rs != nil {
			if last, _, err := env.reg.LastFleetRevision(); err == nil && last.SaltID != rs.ID {
				pc = append(pc, storage.Change{Op: "set-visitor-salt", Detail: "seed " + rs.ID + " from " + rs.From})
			}
		}
		return fleetApplied{Revision: rev.Number, Changes: append(append([]storage.Change{}, changes...), pc...), DryRun: true}, nil
	}
	// Every plugin that would change passes an upload's checks first.
	if _, err := o.pluginChanges(env, rev, false); err != nil {
		return nil, err
	}
	changes, err := env.reg.Plan(want)
	if err != nil {
		return nil, err
	}
	// New projects first, without keys, then the plugin chains, then the
	// keys and channels: no key reaches a project before its chain is in
	// place (a redaction plugin runs on its very first batch).
	for _, p := range want {
		if _, _, err := env.reg.EnsureProject(p.ID); err != nil {
			return nil, err
		}
	}
	pc, err := o.pluginChanges(env, rev, true)
	if err != nil {
		return nil, fmt.Errorf("fleet apply: revision %d not applied: its plugins: %w", rev.Number, err)
	}
	// The visitor seed before the registry: a revision applied has taken
	// its seed (a failure leaves the revision to be applied again).
	salt, saltChange, err := o.fleetSalt(env, rev)
	if err != nil {
		return nil, fmt.Errorf("fleet apply: revision %d not applied: its visitor salt: %w", rev.Number, err)
	}
	if saltChange != nil {
		pc = append(pc, *saltChange)
	}
	if _, err := env.reg.Apply(want, storage.FleetRevision{Number: rev.Number, Signed: o.Revision, SaltID: salt}); err != nil {
		return nil, err
	}
	return fleetApplied{Revision: rev.Number, Changes: append(append([]storage.Change{}, changes...), pc...), SaltTaken: saltChange != nil && saltChange.Op == "set-visitor-salt"}, nil
}

// fleetSalt takes the revision's visitor seed, which o carries (the
// follower opened its sealed copy, or the command read the bundle file):
// the node switches to it on its day, as `salt import` of a later day
// does, or at once, ratcheted to today, for a day already come. It returns
// the id of the seed the node has taken (this one, or the last one before
// it) and the change made, if any. A seed this node was not given leaves
// it on its own, said in the change ("missing-visitor-salt"); the rest of
// the revision applies.
func (o *op) fleetSalt(env *opEnv, rev *bundle.Revision) (string, *storage.Change, error) {
	last, _, err := env.reg.LastFleetRevision()
	if err != nil {
		return "", nil, err
	}
	rs := rev.VisitorSalt
	if rs == nil || rs.ID == last.SaltID {
		return last.SaltID, nil, nil
	}
	if o.Seed == "" {
		return last.SaltID, &storage.Change{Op: "missing-visitor-salt", Detail: "seed " + rs.ID + " from " + rs.From + " was not sealed to this node: `salt import` it, or apply again once the node reports its key"}, nil
	}
	if env.salt == nil {
		return last.SaltID, &storage.Change{Op: "missing-visitor-salt", Detail: "this node hashes no visitors"}, nil
	}
	day, err := core.ParseDay(rs.From)
	if err != nil {
		return "", nil, err
	}
	seed := core.DaySeed{Day: day}
	text := []byte(o.Seed)
	err = seed.ParseSeed(text)
	core.Wipe(text)
	if err != nil {
		return "", nil, err
	}
	defer seed.Wipe()
	if bundle.SeedID(seed.Seed[:]) != rs.ID {
		return "", nil, errors.New("the seed given is not the revision's")
	}
	res, err := env.salt.take(&seed, true)
	if err != nil {
		return "", nil, err
	}
	return rs.ID, &storage.Change{Op: "set-visitor-salt", Detail: "seed " + rs.ID + " " + res.Applied}, nil
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

func marshalSigned(s *bundle.Signed) ([]byte, error) { return json.Marshal(s) }

// openStored decodes a revision the node stored when it applied it (its
// signature was checked then).
func openStored(signed []byte) (*bundle.Revision, error) {
	var s bundle.Signed
	if err := json.Unmarshal(signed, &s); err != nil {
		return nil, err
	}
	return bundle.Open(&s, nil)
}

// readModules reads the modules a bundle's plugin entries name, relative
// to dir: the modules by content hash, each entry's path's hash, and a
// problem for each that cannot be read.
func readModules(dir string, b *bundle.Bundle) (modules map[string][]byte, hashes map[string]string, problems []string) {
	modules, hashes = map[string][]byte{}, map[string]string{}
	for i, p := range b.Projects {
		for j, pl := range p.Plugins {
			if _, ok := hashes[pl.Module]; ok {
				continue
			}
			file := pl.Module
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, file)
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
	return modules, hashes, problems
}
