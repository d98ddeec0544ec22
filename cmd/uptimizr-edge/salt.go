package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/uptimizr/edge/core"
	"github.com/uptimizr/edge/storage"
)

// The visitor-salt ratchet on the command line and in the server
// (docs/OPERATIONS.md, "Visitor ids and the salt ratchet").

// saltEnv is what the salt operations run against: the running server's
// hasher, or, from the CLI on a data dir no server holds, one made from the
// seed file (hasher nil when the data dir has no seed yet).
type saltEnv struct {
	dir    string
	now    func() time.Time
	hasher *core.VisitorHasher
	// adopt makes a new hasher the server's (nil in the CLI).
	adopt func(*core.VisitorHasher)
}

// seedJSON is how a seed is printed and read: `{"day":"YYYY-MM-DD","seed":"<hex>"}`.
type seedJSON struct {
	Day  string `json:"day"`
	Seed string `json:"seed"`
}

type saltImported struct {
	Day     string `json:"day"`
	Applied string `json:"applied"` // "now" or "from <day>"
}

func seedOut(s *core.DaySeed) seedJSON {
	b := s.AppendText(nil)
	day, hexText, _ := strings.Cut(string(b), " ")
	core.Wipe(b)
	return seedJSON{Day: day, Seed: hexText}
}

func (o *op) runSalt(env *opEnv) (any, error) {
	se := env.salt
	if se == nil {
		return nil, errors.New("this node has no visitor hasher")
	}
	today := core.UTCDay(se.now())
	switch o.Name {
	case "salt.init":
		if se.hasher != nil && !o.Force {
			return nil, fmt.Errorf("the data dir already holds a visitor seed (at %s): `salt export` prints it for other nodes; `salt init --force` replaces it, which changes every visitor id from now on", core.DayString(se.hasher.Day()))
		}
		s := core.DaySeed{Day: today}
		if _, err := rand.Read(s.Seed[:]); err != nil {
			return nil, err
		}
		defer s.Wipe()
		if err := se.install(&s); err != nil {
			return nil, err
		}
		return seedOut(&s), nil
	case "salt.export":
		if se.hasher == nil {
			return nil, errNoSeed
		}
		day := today
		if o.Day != "" {
			d, err := core.ParseDay(o.Day)
			if err != nil {
				return nil, fmt.Errorf("--day %w", err)
			}
			day = d
		}
		if day < today {
			return nil, fmt.Errorf("--day %s is before today (%s): a node holds no earlier seed, so an earlier day's visitor ids can never be recomputed", core.DayString(day), core.DayString(today))
		}
		se.hasher.Advance(se.now())
		s, err := se.hasher.Export(day)
		if err != nil {
			return nil, err
		}
		defer s.Wipe()
		return seedOut(&s), nil
	case "salt.import":
		var s core.DaySeed
		d, err := core.ParseDay(o.Day)
		if err != nil {
			return nil, fmt.Errorf("seed day: %w", err)
		}
		s.Day = d
		seedText := []byte(o.Seed)
		err = s.ParseSeed(seedText)
		core.Wipe(seedText)
		if err != nil {
			return nil, err
		}
		defer s.Wipe()
		return se.take(&s, o.Force)
	}
	return nil, fmt.Errorf("unknown operation %q", o.Name)
}

// take makes s the node's seed: a later day's re-keys the node from that
// day on (it keeps its current seed until then); an earlier day's is
// ratcheted to today and taken now, when it is the node's own or force
// (else refused: every visitor id would change).
func (se *saltEnv) take(s *core.DaySeed, force bool) (saltImported, error) {
	today := core.UTCDay(se.now())
	if s.Day > today {
		if se.hasher == nil {
			return saltImported{}, fmt.Errorf("the seed starts on %s, and this node has no seed for today (%s): import today's first (`salt export` on a node of the fleet)", core.DayString(s.Day), core.DayString(today))
		}
		if err := se.hasher.Rekey(s); err != nil {
			return saltImported{}, err
		}
		return saltImported{core.DayString(s.Day), "from " + core.DayString(s.Day)}, nil
	}
	s.AdvanceTo(today)
	if se.hasher != nil {
		se.hasher.Advance(se.now())
		cur, err := se.hasher.Export(today)
		if err != nil {
			return saltImported{}, err
		}
		same := cur.Seed == s.Seed
		cur.Wipe()
		if same {
			return saltImported{core.DayString(today), "already"}, nil
		}
		if !force {
			return saltImported{}, errors.New("the data dir holds another visitor seed: `salt import --force` replaces it, which changes every visitor id from now on")
		}
	}
	if err := se.install(s); err != nil {
		return saltImported{}, err
	}
	return saltImported{core.DayString(today), "now"}, nil
}

var errNoSeedToServe = errors.New("no visitor seed in the data dir: run `uptimizr-edge salt init` on the fleet's first node and `uptimizr-edge salt import` on the others (or set VISITOR_HASH_SECRET, the migration path)")

var errNoSeed = errors.New("the data dir holds no visitor seed: `salt init` makes one (on the fleet's first node), `salt import` takes one from another node")

// install makes s (at today) the seed: the hasher's, or the seed file's when
// there is no hasher yet.
func (se *saltEnv) install(s *core.DaySeed) error {
	if se.hasher != nil {
		return se.hasher.Rekey(s)
	}
	if err := storage.SaveVisitorSeed(se.dir, s, nil); err != nil {
		return err
	}
	if se.adopt != nil {
		se.adopt(newPersistedHasher(se.dir, s, nil, nil))
	}
	return nil
}

// newPersistedHasher is a hasher whose every ratchet step replaces the seed
// file in dir (wiping the one before).
func newPersistedHasher(dir string, cur, pending *core.DaySeed, log *slog.Logger) *core.VisitorHasher {
	h := core.NewSeededVisitorHasher(cur, pending, func(c, p *core.DaySeed) error {
		return storage.SaveVisitorSeed(dir, c, p)
	})
	if log != nil {
		h.OnError(func(err error) {
			log.Error("could not replace the visitor seed file; an earlier day's seed stays on disk until this succeeds (retried every second)", "err", err)
		})
	}
	return h
}

// openVisitorHasher sets up the ratchet of a node serving cfg.DataDir (which
// the caller holds): from the seed file, from VISITOR_HASH_SECRET (the
// migration path), or, in dev mode, from a seed made now. The seed file is
// brought to today before the node serves.
func openVisitorHasher(cfg *core.Config, now func() time.Time, freshDev bool, log *slog.Logger) (*core.VisitorHasher, error) {
	dir := cfg.DataDir
	today := core.UTCDay(now())
	stored, pending, err := storage.LoadVisitorSeed(dir)
	haveStored := err == nil
	if err != nil && !errors.Is(err, storage.ErrNoVisitorSeed) {
		return nil, fmt.Errorf("visitor seed: %w", err)
	}
	defer stored.Wipe()
	var cur core.DaySeed
	defer cur.Wipe()
	switch {
	case cfg.VisitorHashSecret != "":
		cur = core.SeedFromSecret([]byte(cfg.VisitorHashSecret))
		cur.AdvanceTo(max(today, stored.Day))
		if haveStored {
			stored.AdvanceTo(cur.Day)
			if stored.Seed != cur.Seed {
				return nil, fmt.Errorf("VISITOR_HASH_SECRET and the visitor seed in %s disagree: unset VISITOR_HASH_SECRET to use the seed (from salt init or salt import), or remove that file to go back to the secret", storage.VisitorSeedPath(dir))
			}
		}
		log.Warn("VISITOR_HASH_SECRET is set: earlier days' visitor ids stay computable from it; once every node has its seed file, remove the secret everywhere for forward secrecy (docs/OPERATIONS.md)")
	case haveStored:
		cur = stored
	case cfg.DevMode:
		legacy := devSecretPath(dir)
		if b, err := os.ReadFile(legacy); err == nil {
			// A dev data dir of an earlier version: its generated secret
			// becomes the seed's root once, then is wiped.
			secret := bytes.TrimSpace(b)
			cur = core.SeedFromSecret(secret)
			core.Wipe(b)
			cur.AdvanceTo(today)
			if err := storage.SaveVisitorSeed(dir, &cur, nil); err != nil {
				return nil, err
			}
			if err := storage.WipeFile(legacy); err != nil {
				return nil, err
			}
		} else {
			cur.Day = today
			if _, err := rand.Read(cur.Seed[:]); err != nil {
				return nil, err
			}
		}
	default:
		return nil, errNoSeedToServe
	}
	if cur.Day > today {
		return nil, fmt.Errorf("the visitor seed is for %s, after today (%s): is the clock right?", core.DayString(cur.Day), core.DayString(today))
	}
	cur.AdvanceTo(today)
	if pending != nil {
		defer pending.Wipe()
	}
	h := newPersistedHasher(dir, &cur, pending, log)
	if err := storage.SaveVisitorSeed(dir, &cur, pending); err != nil {
		return nil, err
	}
	return h, nil
}

// runRatchet advances h every second, so that the seed of a day that has
// ended is wiped within a second of midnight (UTC) even on a node that
// receives no request, and a failed seed-file replacement is retried.
func runRatchet(h *core.VisitorHasher, now func() time.Time, log *slog.Logger, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	day := h.Day()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.Advance(now())
			if d := h.Day(); d != day {
				day = d
				log.Info("visitor salt rotated: the previous day's seed is wiped", "day", core.DayString(d))
			}
		}
	}
}

// clock is the node's clock: time.Now, or with COLLECTOR_CLOCK_START set (a
// testing aid) a clock that starts at that instant and runs at real speed.
func clock(cfg *core.Config) func() time.Time {
	if cfg.ClockStart.IsZero() {
		return time.Now
	}
	off := time.Until(cfg.ClockStart)
	return func() time.Time { return time.Now().Add(off) }
}

// saltCommands are `uptimizr-edge salt init|export|import`.
func (c *cli) saltCommands() *cobra.Command {
	salt := &cobra.Command{Use: "salt", Short: "The visitor-salt ratchet: a node's seed of the daily visitor-id salt"}
	var force bool
	var day string
	initCmd := &cobra.Command{
		Use:   "init [--force]",
		Short: "Make a new random seed for today; prints it once, to import on the fleet's other nodes",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			err := c.do(&op{Name: "salt.init", Force: force})
			if err == nil {
				fmt.Fprintln(c.errOut, "Keep this seed secret; it is shown only now. On every other node of the fleet run: uptimizr-edge salt import < seed.json")
			}
			return err
		},
	}
	initCmd.Flags().BoolVar(&force, "force", false, "replace the data dir's seed (every visitor id changes from now on)")
	export := &cobra.Command{
		Use:   "export [--day YYYY-MM-DD]",
		Short: "Print the seed of today or a later day (never an earlier one), to import on another node",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return c.do(&op{Name: "salt.export", Day: day})
		},
	}
	export.Flags().StringVar(&day, "day", "", "UTC day YYYY-MM-DD (default today)")
	var importForce bool
	imp := &cobra.Command{
		Use:   "import [--force] < seed.json",
		Short: "Take a seed printed by salt init or salt export on another node (JSON on stdin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := readSeedJSON(cmd.InOrStdin())
			if err != nil {
				return err
			}
			return c.do(&op{Name: "salt.import", Day: s.Day, Seed: s.Seed, Force: importForce})
		},
	}
	imp.Flags().BoolVar(&importForce, "force", false, "replace a different seed the data dir holds (every visitor id changes from now on)")
	salt.AddCommand(initCmd, export, imp)
	return salt
}

func readSeedJSON(r io.Reader) (seedJSON, error) {
	var s seedJSON
	b, err := io.ReadAll(io.LimitReader(bufio.NewReader(r), 4096))
	if err != nil {
		return s, err
	}
	defer core.Wipe(b)
	if err := json.Unmarshal(b, &s); err != nil || s.Day == "" || s.Seed == "" {
		return s, errors.New(`stdin: want the JSON that salt init or salt export printed: {"day":"YYYY-MM-DD","seed":"<64 hex digits>"}`)
	}
	return s, nil
}

// devMarker marks a data dir made by dev mode, which stays in dev mode.
const devMarker = "dev-mode"

func devMarkerPath(dir string) string { return filepath.Join(dir, devMarker) }
