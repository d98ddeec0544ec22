package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

type cli struct {
	out, errOut io.Writer
	dataDir     string
	addr        string
	settings    map[string]*string // env name → its flag's value ("" = not given)
}

func newRootCmd(out, errOut io.Writer) *cobra.Command {
	c := &cli{out: out, errOut: errOut, settings: map[string]*string{}}
	root := &cobra.Command{
		Use:   "uptimizr-edge",
		Short: "Uptimizr Edge: privacy-first analytics collector for 3D web scenes",
		Long: "Uptimizr Edge collects event batches from the Uptimizr browser SDKs.\n" +
			"Run with no subcommand to serve; on an empty data dir it starts in dev mode.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd, true)
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.PersistentFlags().StringVar(&c.dataDir, "data-dir", "", "data directory (default $COLLECTOR_DATA_DIR or ./data)")

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the collector",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd, false)
		},
	}
	hub := &cobra.Command{
		Use:   "hub",
		Short: "Run the fleet's hub: consume every node's records from the stream engine (COLLECTOR_HUB_SOURCE) and serve their read API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.hub(cmd)
		},
	}
	for _, cmd := range []*cobra.Command{root, serve, hub} {
		cmd.Flags().StringVar(&c.addr, "addr", "", "listen address HOST:PORT (default $COLLECTOR_HOST:$COLLECTOR_PORT)")
		// A flag for every setting, named after its variable; the flag wins.
		for _, s := range core.Settings {
			if s.Flag == "data-dir" { // the persistent --data-dir above
				continue
			}
			p := c.settings[s.Env]
			if p == nil {
				p = new(string)
				c.settings[s.Env] = p
			}
			cmd.Flags().StringVar(p, s.Flag, "", s.Usage+" ($"+s.Env+")")
		}
	}

	project := &cobra.Command{Use: "project", Short: "Manage projects"}
	project.AddCommand(&cobra.Command{
		Use:   "create ID",
		Short: "Create a project and print its keys (shown only this once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "project.create", Project: args[0]})
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "project.list"})
		},
	})

	var keyProject, keyCaps string
	key := &cobra.Command{Use: "key", Short: "Manage API keys"}
	keyCreate := &cobra.Command{
		Use:   "create --project ID --cap ingest|query|admin",
		Short: "Create a key (printed only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := core.ParseCapabilities(keyCaps); err != nil {
				return err
			}
			return c.do(&op{Name: "key.create", Project: keyProject, Caps: keyCaps})
		},
	}
	keyRevoke := &cobra.Command{
		Use:   "revoke --project ID KEY_OR_ID",
		Short: "Revoke a key, named by its id (see key list) or by the key itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "key.revoke", Project: keyProject, Key: args[0]})
		},
	}
	keyList := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's live keys (ids and capabilities, never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "key.list", Project: keyProject})
		},
	}
	for _, cmd := range []*cobra.Command{keyCreate, keyRevoke, keyList} {
		cmd.Flags().StringVar(&keyProject, "project", "", "project id")
		_ = cmd.MarkFlagRequired("project")
	}
	keyCreate.Flags().StringVar(&keyCaps, "cap", "", "capabilities: ingest, query, admin (comma list)")
	_ = keyCreate.MarkFlagRequired("cap")
	key.AddCommand(keyCreate, keyRevoke, keyList)

	var chProject string
	channels := &cobra.Command{Use: "channels", Short: "Project capture channels (opt-in data)"}
	chSet := &cobra.Command{
		Use:   "set --project ID NAME=on|off …",
		Short: "Turn channels on or off: " + strings.Join(core.ChannelNames, ", "),
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "channels.set", Project: chProject, Settings: args})
		},
	}
	chGet := &cobra.Command{
		Use:   "get --project ID",
		Short: "Show a project's channel settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "channels.get", Project: chProject})
		},
	}
	for _, cmd := range []*cobra.Command{chSet, chGet} {
		cmd.Flags().StringVar(&chProject, "project", "", "project id")
		_ = cmd.MarkFlagRequired("project")
	}
	channels.AddCommand(chSet, chGet)

	var plProject, plName, plFile, plConfig, plPolicy string
	var plVersion int
	plugin := &cobra.Command{Use: "plugin", Short: "Manage a project's WebAssembly filter plugins"}
	plUpload := &cobra.Command{
		Use:   "upload --project ID --name NAME --file F.wasm [--config JSON] [--policy quarantine|drop|pass]",
		Short: "Check, store and activate a new plugin version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(plFile)
			if err != nil {
				return err
			}
			return c.do(&op{Name: "plugin.upload", Project: plProject, Plugin: plName, Module: wasm, Config: plConfig, Policy: plPolicy})
		},
	}
	plList := &cobra.Command{Use: "list --project ID", Short: "List the chain", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "plugin.list", Project: plProject})
		}}
	plActivate := &cobra.Command{Use: "activate --project ID --name NAME --version N", Short: "Make a version live", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "plugin.activate", Project: plProject, Plugin: plName, Version: plVersion})
		}}
	plRollback := &cobra.Command{Use: "rollback --project ID --name NAME", Short: "Make the previous version live", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "plugin.rollback", Project: plProject, Plugin: plName})
		}}
	plRemove := &cobra.Command{Use: "remove --project ID --name NAME", Short: "Take a plugin out of the chain", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "plugin.remove", Project: plProject, Plugin: plName})
		}}
	plConfigCmd := &cobra.Command{Use: "config --project ID --name NAME --config JSON [--policy P]", Short: "New version with the same module and a new config", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "plugin.config", Project: plProject, Plugin: plName, Config: plConfig, Policy: plPolicy})
		}}
	plOrder := &cobra.Command{Use: "order --project ID NAME…", Short: "Reorder the chain (name every plugin once)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.do(&op{Name: "plugin.order", Project: plProject, Order: args})
		}}
	for _, cmd := range []*cobra.Command{plUpload, plList, plActivate, plRollback, plRemove, plConfigCmd, plOrder} {
		cmd.Flags().StringVar(&plProject, "project", "", "project id")
		_ = cmd.MarkFlagRequired("project")
		if cmd != plList && cmd != plOrder {
			cmd.Flags().StringVar(&plName, "name", "", "plugin name")
			_ = cmd.MarkFlagRequired("name")
		}
	}
	plUpload.Flags().StringVar(&plFile, "file", "", "the module (.wasm)")
	_ = plUpload.MarkFlagRequired("file")
	plUpload.Flags().StringVar(&plConfig, "config", "", "JSON config object")
	plUpload.Flags().StringVar(&plPolicy, "policy", "quarantine", "failure policy: quarantine, drop or pass")
	plActivate.Flags().IntVar(&plVersion, "version", 0, "version to make live")
	_ = plActivate.MarkFlagRequired("version")
	plConfigCmd.Flags().StringVar(&plConfig, "config", "", "JSON config object")
	_ = plConfigCmd.MarkFlagRequired("config")
	plConfigCmd.Flags().StringVar(&plPolicy, "policy", "", "failure policy (default: unchanged)")
	plugin.AddCommand(plUpload, plList, plActivate, plRollback, plRemove, plConfigCmd, plOrder)

	root.AddCommand(serve, hub, project, key, channels, plugin, c.saltCommands(), c.fleetCommands())
	return root
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q: want on or off", v)
}

// config builds the one Config from defaults, the environment and flags.
func (c *cli) config() (core.Config, error) {
	cfg := core.DefaultConfig()
	getenv := func(name string) string {
		if p := c.settings[name]; p != nil && *p != "" {
			return *p
		}
		return os.Getenv(name)
	}
	if err := cfg.LoadEnv(getenv); err != nil {
		return cfg, err
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	if c.addr != "" {
		host, port, err := net.SplitHostPort(c.addr)
		if err != nil {
			return cfg, fmt.Errorf("--addr %q: want HOST:PORT", c.addr)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return cfg, fmt.Errorf("--addr %q: bad port", c.addr)
		}
		cfg.Host, cfg.Port = host, p
	}
	return cfg, nil
}

// do runs an operator command (runOp) and prints its answer.
func (c *cli) do(o *op) error {
	if o.Name == "salt.export" {
		return c.doSaltExport(o)
	}
	out, err := c.runOp(o)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(out))
	return err
}

// doSaltExport is do for salt export, which reads beside a running node.
func (c *cli) doSaltExport(o *op) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	s, err := storage.Open(storage.Options{Dir: cfg.DataDir, MinFreeDisk: -1, DisableAggregation: true})
	if errors.Is(err, storage.ErrDataDirInUse) {
		// Read beside the running node: the seed never passes through its
		// buffers, which are not wiped.
		return c.exportBeside(&cfg, o)
	}
	if err != nil {
		return err
	}
	out, err := c.runOn(&cfg, s, o)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(out))
	return err
}

// runOp runs an operator command and returns its answer's JSON: directly on
// the data dir, or, when a running server holds it, through that server's
// control socket.
func (c *cli) runOp(o *op) ([]byte, error) {
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	s, err := storage.Open(storage.Options{Dir: cfg.DataDir, MinFreeDisk: -1, DisableAggregation: true})
	if errors.Is(err, storage.ErrDataDirInUse) {
		return sendControl(cfg.DataDir, o)
	}
	if err != nil {
		return nil, err
	}
	return c.runOn(&cfg, s, o)
}

// runOn runs an operator command on the store s this command opened, and
// closes it.
func (c *cli) runOn(cfg *core.Config, s *storage.Store, o *op) ([]byte, error) {
	pub, err := parseControlPub(cfg)
	if err != nil {
		s.Close()
		return nil, err
	}
	var host *plugins.Host
	env := &opEnv{reg: s.Registry(), moduleMiB: cfg.PluginModuleMiB, controlPub: pub, fleetManaged: cfg.FleetManaged(), where: " for this command (--plugin-max-module-mb or the environment)", plugins: func() (*plugins.Manager, error) {
		// Changes made here go live when the node next starts.
		h, mgr, err := newPluginManager(context.Background(), cfg, s, slog.New(slog.DiscardHandler))
		host = h
		return mgr, err
	}}
	if strings.HasPrefix(o.Name, "salt.") || o.Name == "fleet.apply" && o.Seed != "" {
		se, err := cliSaltEnv(cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		env.salt = se
	}
	v, runErr := o.run(env)
	if host != nil {
		host.Close(context.Background())
	}
	if err := s.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return nil, runErr
	}
	return json.Marshal(v)
}

// exportBeside runs salt export on the seed file of a data dir a running
// node holds, read-only.
func (c *cli) exportBeside(cfg *core.Config, o *op) error {
	var cur core.DaySeed
	var pending *core.DaySeed
	var err error
	for range 3 { // a save under way may leave neither file whole for an instant
		if cur, pending, err = storage.ReadVisitorSeed(cfg.DataDir); err == nil || errors.Is(err, storage.ErrNoVisitorSeed) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	se := &saltEnv{dir: cfg.DataDir, now: clock(cfg)}
	if err == nil {
		se.hasher = core.NewSeededVisitorHasher(&cur, pending, nil)
		cur.Wipe()
		if pending != nil {
			pending.Wipe()
		}
	} else if !errors.Is(err, storage.ErrNoVisitorSeed) {
		return err
	}
	v, err := o.runSalt(&opEnv{salt: se})
	if err != nil {
		return err
	}
	return c.printJSON(v)
}

// cliSaltEnv is the salt operations' environment on a data dir no server
// holds: a hasher on its seed file, if it has one.
func cliSaltEnv(cfg *core.Config) (*saltEnv, error) {
	se := &saltEnv{dir: cfg.DataDir, now: clock(cfg)}
	cur, pending, err := storage.LoadVisitorSeed(cfg.DataDir)
	switch {
	case errors.Is(err, storage.ErrNoVisitorSeed):
		return se, nil
	case err != nil:
		return nil, err
	}
	se.hasher = newPersistedHasher(cfg.DataDir, &cur, pending, nil)
	cur.Wipe()
	if pending != nil {
		pending.Wipe()
	}
	return se, nil
}

func (c *cli) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.out, string(b))
	return err
}

func dirEmpty(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err != nil || len(entries) == 0
}

const devSecretFile = "dev-visitor-secret"

func devSecretPath(dir string) string { return filepath.Join(dir, devSecretFile) }
