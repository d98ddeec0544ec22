package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

type cli struct {
	out, errOut io.Writer
	dataDir     string
	addr        string
}

func newRootCmd(out, errOut io.Writer) *cobra.Command {
	c := &cli{out: out, errOut: errOut}
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
	for _, cmd := range []*cobra.Command{root, serve} {
		cmd.Flags().StringVar(&c.addr, "addr", "", "listen address HOST:PORT (default $COLLECTOR_HOST:$COLLECTOR_PORT)")
	}

	project := &cobra.Command{Use: "project", Short: "Manage projects"}
	project.AddCommand(&cobra.Command{
		Use:   "create ID",
		Short: "Create a project and print its keys (shown only this once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(s *storage.Store) error {
				keys, err := s.Registry().CreateProject(args[0])
				if err != nil {
					return err
				}
				return c.printJSON(map[string]any{"project": args[0], "keys": keys})
			})
		},
	}, &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(s *storage.Store) error {
				type row struct {
					Project  string        `json:"project"`
					Created  string        `json:"createdAt"`
					Keys     int           `json:"keys"`
					Channels core.Channels `json:"channels"`
				}
				rows := []row{}
				for _, p := range s.Registry().Projects() {
					rows = append(rows, row{p.ID, p.CreatedAt.Format("2006-01-02T15:04:05Z"), len(s.Registry().Keys(p.ID)), p.Channels()})
				}
				return c.printJSON(rows)
			})
		},
	})

	var keyProject, keyCaps string
	key := &cobra.Command{Use: "key", Short: "Manage API keys"}
	keyCreate := &cobra.Command{
		Use:   "create --project ID --cap ingest|query|admin",
		Short: "Create a key (printed only this once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			caps, err := core.ParseCapabilities(keyCaps)
			if err != nil {
				return err
			}
			return c.withStore(func(s *storage.Store) error {
				secret, id, err := s.Registry().CreateKey(keyProject, caps)
				if err != nil {
					return err
				}
				return c.printJSON(map[string]any{"project": keyProject, "id": id, "caps": caps.String(), "key": secret})
			})
		},
	}
	keyRevoke := &cobra.Command{
		Use:   "revoke --project ID KEY_OR_ID",
		Short: "Revoke a key, named by its id (see key list) or by the key itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(s *storage.Store) error {
				id, err := s.Registry().RevokeKey(keyProject, args[0])
				if err != nil {
					return err
				}
				return c.printJSON(map[string]any{"project": keyProject, "revoked": id})
			})
		},
	}
	keyList := &cobra.Command{
		Use:   "list --project ID",
		Short: "List a project's live keys (ids and capabilities, never the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(s *storage.Store) error {
				if s.Registry().Project(keyProject) == nil {
					return fmt.Errorf("%w: %s", storage.ErrProjectNotFound, keyProject)
				}
				type row struct {
					ID      string `json:"id"`
					Caps    string `json:"caps"`
					Created string `json:"createdAt"`
				}
				rows := []row{}
				for _, k := range s.Registry().Keys(keyProject) {
					rows = append(rows, row{k.ID, k.Caps.String(), k.CreatedAt.Format("2006-01-02T15:04:05Z")})
				}
				return c.printJSON(rows)
			})
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
			return c.withStore(func(s *storage.Store) error {
				p := s.Registry().Project(chProject)
				if p == nil {
					return fmt.Errorf("%w: %s", storage.ErrProjectNotFound, chProject)
				}
				ch := p.Channels()
				for _, a := range args {
					name, val, ok := strings.Cut(a, "=")
					if !ok {
						return fmt.Errorf("%q: want NAME=on or NAME=off", a)
					}
					on, err := parseOnOff(val)
					if err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
					if !ch.Set(name, on) {
						return fmt.Errorf("unknown channel %q (known: %s)", name, strings.Join(core.ChannelNames, ", "))
					}
				}
				if err := s.Registry().SetChannels(chProject, ch); err != nil {
					return err
				}
				return c.printJSON(ch)
			})
		},
	}
	chGet := &cobra.Command{
		Use:   "get --project ID",
		Short: "Show a project's channel settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withStore(func(s *storage.Store) error {
				p := s.Registry().Project(chProject)
				if p == nil {
					return fmt.Errorf("%w: %s", storage.ErrProjectNotFound, chProject)
				}
				return c.printJSON(p.Channels())
			})
		},
	}
	for _, cmd := range []*cobra.Command{chSet, chGet} {
		cmd.Flags().StringVar(&chProject, "project", "", "project id")
		_ = cmd.MarkFlagRequired("project")
	}
	channels.AddCommand(chSet, chGet)

	root.AddCommand(serve, project, key, channels)
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
	if err := cfg.LoadEnv(os.Getenv); err != nil {
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

// withStore opens the data dir for an operator command. A data dir held by a
// running server is refused with a clear message, never opened twice.
func (c *cli) withStore(f func(*storage.Store) error) error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	s, err := storage.Open(storage.Options{Dir: cfg.DataDir, MinFreeDisk: -1})
	if err != nil {
		if errors.Is(err, storage.ErrDataDirInUse) {
			return fmt.Errorf("data dir %s is in use by a running uptimizr-edge: stop it first, or use the admin HTTP API (PUT /api/v1/channels)", cfg.DataDir)
		}
		return err
	}
	ferr := f(s)
	if err := s.Close(); err != nil && ferr == nil {
		ferr = err
	}
	return ferr
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
