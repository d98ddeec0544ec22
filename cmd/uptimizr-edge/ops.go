package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/plugins"
	"github.com/uptimizr/edge/storage"
)

// op is one operator command on projects, keys or channels. The CLI runs it
// directly on the data dir when no server holds it, or hands it to the
// running server over the data dir's control socket, so that a change such
// as a key revocation takes effect at once and the store is never opened
// twice.
type op struct {
	Name     string   `json:"op"`
	Project  string   `json:"project,omitempty"`
	Caps     string   `json:"caps,omitempty"`
	Key      string   `json:"key,omitempty"`
	Settings []string `json:"settings,omitempty"`

	Plugin  string   `json:"plugin,omitempty"`
	Order   []string `json:"order,omitempty"`
	Module  []byte   `json:"module,omitempty"`
	Config  string   `json:"config,omitempty"`
	Policy  string   `json:"policy,omitempty"`
	Version int      `json:"version,omitempty"`

	// fleet apply and diff: the signed revision, the modules it names (by
	// content hash), and whether only to show the changes.
	Revision json.RawMessage   `json:"revision,omitempty"`
	Modules  map[string][]byte `json:"modules,omitempty"`
	Dry      bool              `json:"dry,omitempty"`

	Day   string `json:"day,omitempty"`  // salt: a UTC day YYYY-MM-DD
	Seed  string `json:"seed,omitempty"` // salt import: the seed's hex digits
	Force bool   `json:"force,omitempty"`
}

// opEnv is what an operation runs against: the registry, and the plugin
// manager (the running server's, or one made for this command).
type opEnv struct {
	reg     *storage.Registry
	plugins func() (*plugins.Manager, error)
	salt    *saltEnv
	// moduleMiB is COLLECTOR_PLUGIN_MAX_MODULE_MB of the process that runs
	// the operation (the server's, or this command's).
	moduleMiB int
	// where says whose setting it is, for messages ("on the running server").
	where string
	// controlPub is COLLECTOR_CONTROL_PUBKEY: set, fleet revisions must be
	// signed with its private half.
	controlPub ed25519.PublicKey
	// fleetManaged: the node follows a control plane, which owns its
	// projects, keys, channels and plugins; local changes are refused.
	fleetManaged bool
}

// fleetOwnedOps are the operations that change what a fleet bundle owns.
var fleetOwnedOps = map[string]bool{"project.create": true, "key.create": true, "key.revoke": true, "channels.set": true,
	"plugin.upload": true, "plugin.activate": true, "plugin.rollback": true, "plugin.remove": true, "plugin.order": true, "plugin.config": true}

// moduleTooLarge is the error of a plugin module over env's limit.
func (env *opEnv) moduleTooLarge(n int) error {
	limit := env.moduleMiB << 20
	return fmt.Errorf("plugin module of %d bytes (%s) exceeds %d bytes (%d MiB), the limit set by COLLECTOR_PLUGIN_MAX_MODULE_MB=%d%s: send a smaller module, or raise the limit (1–256 MiB)",
		n, mibText(n), limit, env.moduleMiB, env.moduleMiB, env.where)
}

// mibText writes n bytes in MiB with one decimal.
func mibText(n int) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

type projectCreated struct {
	Project string          `json:"project"`
	Keys    storage.NewKeys `json:"keys"`
}

type keyCreated struct {
	Project string `json:"project"`
	ID      string `json:"id"`
	Caps    string `json:"caps"`
	Key     string `json:"key"`
}

type keyRevoked struct {
	Project string `json:"project"`
	Revoked string `json:"revoked"`
}

type projectRow struct {
	Project  string        `json:"project"`
	Created  string        `json:"createdAt"`
	Keys     int           `json:"keys"`
	Channels core.Channels `json:"channels"`
}

type keyRow struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"` // a fleet bundle's key
	Caps    string `json:"caps"`
	Created string `json:"createdAt"`
}

type pluginVersion struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// run executes o and returns the value to print.
func (o *op) run(env *opEnv) (any, error) {
	if env.fleetManaged && (fleetOwnedOps[o.Name] || o.Name == "fleet.apply" && !o.Dry) {
		return nil, errors.New("this node follows a fleet bundle (its control plane, or COLLECTOR_BUNDLE), which owns its projects, keys, channels and plugins: change the bundle (docs/FLEET.md)")
	}
	reg := env.reg
	project := func() (*storage.Project, error) {
		p := reg.Project(o.Project)
		if p == nil {
			return nil, fmt.Errorf("%w: %s", storage.ErrProjectNotFound, o.Project)
		}
		return p, nil
	}
	switch o.Name {
	case "project.create":
		keys, err := reg.CreateProject(o.Project)
		if err != nil {
			return nil, err
		}
		return projectCreated{o.Project, keys}, nil
	case "project.list":
		rows := []projectRow{}
		for _, p := range reg.Projects() {
			rows = append(rows, projectRow{p.ID, p.CreatedAt.Format(time.RFC3339), len(reg.Keys(p.ID)), p.Channels()})
		}
		return rows, nil
	case "key.create":
		caps, err := core.ParseCapabilities(o.Caps)
		if err != nil {
			return nil, err
		}
		secret, id, err := reg.CreateKey(o.Project, caps)
		if err != nil {
			return nil, err
		}
		return keyCreated{o.Project, id, caps.String(), secret}, nil
	case "key.revoke":
		id, err := reg.RevokeKey(o.Project, o.Key)
		if err != nil {
			return nil, err
		}
		return keyRevoked{o.Project, id}, nil
	case "key.list":
		if _, err := project(); err != nil {
			return nil, err
		}
		rows := []keyRow{}
		for _, k := range reg.Keys(o.Project) {
			rows = append(rows, keyRow{k.ID, k.Name, k.Caps.String(), k.CreatedAt.Format(time.RFC3339)})
		}
		return rows, nil
	case "channels.get":
		p, err := project()
		if err != nil {
			return nil, err
		}
		return p.Channels(), nil
	case "channels.set":
		p, err := project()
		if err != nil {
			return nil, err
		}
		ch := p.Channels()
		for _, a := range o.Settings {
			name, val, ok := strings.Cut(a, "=")
			if !ok {
				return nil, fmt.Errorf("%q: want NAME=on or NAME=off", a)
			}
			on, err := parseOnOff(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if !ch.Set(name, on) {
				return nil, fmt.Errorf("unknown channel %q (known: %s)", name, strings.Join(core.ChannelNames, ", "))
			}
		}
		if err := reg.SetChannels(o.Project, ch); err != nil {
			return nil, err
		}
		return ch, nil
	}
	if strings.HasPrefix(o.Name, "salt.") {
		return o.runSalt(env)
	}
	if strings.HasPrefix(o.Name, "fleet.") {
		return o.runFleet(env)
	}
	if len(o.Name) > 7 && o.Name[:7] == "plugin." {
		return o.runPlugin(env)
	}
	return nil, fmt.Errorf("unknown operation %q", o.Name)
}

func (o *op) runPlugin(env *opEnv) (any, error) {
	p := env.reg.Project(o.Project)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", storage.ErrProjectNotFound, o.Project)
	}
	mgr, err := env.plugins()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	var rec *core.PluginRecord
	switch o.Name {
	case "plugin.upload":
		if env.moduleMiB > 0 && len(o.Module) > env.moduleMiB<<20 {
			return nil, env.moduleTooLarge(len(o.Module))
		}
		rec, err = mgr.Upload(ctx, p.Num, p.ID, o.Plugin, o.Module, []byte(o.Config), o.Policy)
	case "plugin.activate":
		rec, err = mgr.Activate(ctx, p.Num, o.Plugin, o.Version)
	case "plugin.rollback":
		rec, err = mgr.Rollback(ctx, p.Num, o.Plugin)
	case "plugin.config":
		rec, err = mgr.SetConfig(ctx, p.Num, p.ID, o.Plugin, []byte(o.Config), o.Policy)
	case "plugin.order":
		if err := mgr.SetOrder(ctx, p.Num, o.Order); err != nil {
			return nil, err
		}
		return map[string][]string{"order": o.Order}, nil
	case "plugin.remove":
		if err := mgr.Remove(ctx, p.Num, o.Plugin); err != nil {
			return nil, err
		}
		return map[string]string{"removed": o.Plugin}, nil
	case "plugin.list":
		recs, err := mgr.List(p.Num)
		if recs == nil {
			recs = []core.PluginRecord{}
		}
		return recs, err
	default:
		return nil, fmt.Errorf("unknown operation %q", o.Name)
	}
	if err != nil {
		return nil, err
	}
	return pluginVersion{rec.Name, rec.Active}, nil
}

const controlSocket = "control.sock"

func controlPath(dataDir string) string { return filepath.Join(dataDir, controlSocket) }

// serveControl answers operator commands from the CLI on a unix socket in the
// data dir (mode 0600: only the data dir's owner can use it). It returns a
// function that stops it.
func serveControl(dataDir string, env *opEnv, log *slog.Logger) (func(), error) {
	path := controlPath(dataDir)
	_ = os.Remove(path) // a stale socket of a process that is gone (the data dir lock is ours)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	// The largest request: a module at the limit, base64 in JSON, and room
	// for the rest of the operation (a plugin config is at most 64 KiB).
	maxRequest := int64(base64.StdEncoding.EncodedLen(env.moduleMiB<<20)) + 1<<20
	mux.HandleFunc("POST /op", func(w http.ResponseWriter, r *http.Request) {
		fail := func(status int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": msg})
		}
		// The CLI says how large a module it sends, and asks to go on
		// (Expect: 100-continue): a module over the limit is refused
		// before it is sent.
		if n, err := strconv.Atoi(r.Header.Get(moduleSizeHeader)); err == nil && n > env.moduleMiB<<20 {
			fail(http.StatusRequestEntityTooLarge, env.moduleTooLarge(n).Error())
			return
		}
		var o op
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&o); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("operator command exceeds %d bytes: it can carry a plugin module of at most %d bytes (%d MiB), the limit set by COLLECTOR_PLUGIN_MAX_MODULE_MB=%d%s",
					maxRequest, env.moduleMiB<<20, env.moduleMiB, env.moduleMiB, env.where))
				return
			}
			fail(http.StatusBadRequest, "malformed operator command: "+err.Error())
			return
		}
		v, err := o.run(env)
		if err != nil {
			fail(http.StatusUnprocessableEntity, err.Error())
			return
		}
		log.Info("operator command", "op", o.Name, "project", o.Project)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.Remove(path)
	}, nil
}

// moduleSizeHeader carries the size of the plugin module an operator
// command holds, so that the server can refuse it before it is sent.
const moduleSizeHeader = "X-Uptimizr-Module-Bytes"

// sendControl runs o on the server that holds dataDir.
func sendControl(dataDir string, o *op) (json.RawMessage, error) {
	path := controlPath(dataDir)
	timeout := 10 * time.Second
	if len(o.Module) > 0 || len(o.Modules) > 0 || o.Name == "plugin.config" {
		timeout = 2 * time.Minute // the server compiles and self-tests the module
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		ExpectContinueTimeout: 5 * time.Second,
	}}
	body, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest("POST", "http://control/op", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if len(o.Module) > 0 {
		req.Header.Set(moduleSizeHeader, strconv.Itoa(len(o.Module)))
		req.Header.Set("Expect", "100-continue")
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("data dir %s is in use by a running uptimizr-edge, and its control socket does not answer: %v", dataDir, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		msg := "control socket: " + res.Status
		if text := strings.TrimSpace(string(b)); text != "" {
			msg += ": " + text
		}
		return nil, errors.New(msg)
	}
	return json.RawMessage(strings.TrimSpace(string(b))), nil
}
