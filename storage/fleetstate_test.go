package storage

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uptimizr/edge/core"
)

func desiredKey(t *testing.T, name string, caps Capability) (DesiredKey, string) {
	t.Helper()
	secret, err := core.NewKeySecret(caps)
	if err != nil {
		t.Fatal(err)
	}
	return DesiredKey{Name: name, Caps: caps, Hash: HashKey([]byte(secret))}, secret
}

func resolves(r *Registry, secret, project string, caps Capability) bool {
	p, c, ok := r.Resolve(ptr(HashKey([]byte(secret))))
	return ok && p.ProjectID() == project && c == caps
}

// TestApplyRevision: a revision's projects, channels and named keys are
// made live at once; the next one changes caps, revokes the keys it
// left out (a dropped project's too) and leaves the node's own keys
// alone; all of it survives a restart.
func TestApplyRevision(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	r := s.Registry()
	if _, _, err := r.EnsureProject("local"); err != nil {
		t.Fatal(err)
	}
	localSecret, _, err := r.CreateKey("local", CapIngest)
	if err != nil {
		t.Fatal(err)
	}
	web, webSecret := desiredKey(t, "web", CapIngest)
	dash, dashSecret := desiredKey(t, "dash", CapQuery)
	ops, opsSecret := desiredKey(t, "ops", CapAdmin)
	gaze := core.DefaultChannels()
	gaze.Gaze = true
	rev1 := []DesiredProject{
		{ID: "shop", Channels: gaze, Keys: []DesiredKey{web, dash}},
		{ID: "blog", Channels: core.DefaultChannels(), Keys: []DesiredKey{ops}},
	}
	plan, err := r.Plan(rev1)
	if err != nil {
		t.Fatal(err)
	}
	changes, err := r.Apply(rev1, FleetRevision{Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(plan) != fmt.Sprint(changes) || len(changes) != 7 {
		t.Fatalf("plan %v\napplied %v", plan, changes)
	}
	if !resolves(r, webSecret, "shop", CapIngest) || !resolves(r, dashSecret, "shop", CapQuery) || !resolves(r, opsSecret, "blog", CapAdmin) {
		t.Fatal("a key of revision 1 does not resolve")
	}
	if !r.Project("shop").Channels().Gaze {
		t.Fatal("shop's gaze channel is off")
	}
	if again, err := r.Plan(rev1); err != nil || len(again) != 0 {
		t.Fatalf("plan after applying: %v, %v", again, err)
	}

	// Revision 2: web gains query, dash is left out, blog is dropped, gaze
	// goes off.
	web.Caps = CapIngest | CapQuery
	rev2 := []DesiredProject{{ID: "shop", Channels: core.DefaultChannels(), Keys: []DesiredKey{web}}}
	changes, err = r.Apply(rev2, FleetRevision{Number: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]Change{
		{Op: "set-channels", Project: "shop", Detail: channelText(gaze) + " → " + channelText(core.DefaultChannels())},
		{Op: "set-caps", Project: "shop", Key: "web", KeyID: core.KeyID(web.Hash), Detail: "ingest → ingest,query"},
		{Op: "revoke-key", Project: "blog", Key: "ops", KeyID: core.KeyID(ops.Hash), Detail: "its project is no longer in the bundle"},
		{Op: "revoke-key", Project: "shop", Key: "dash", KeyID: core.KeyID(dash.Hash)},
	})
	if fmt.Sprint(changes) != want {
		t.Errorf("changes\n got %v\nwant %s", changes, want)
	}
	check := func(r *Registry) {
		t.Helper()
		if !resolves(r, webSecret, "shop", CapIngest|CapQuery) {
			t.Error("web does not resolve with its new caps")
		}
		if resolves(r, dashSecret, "shop", CapQuery) || resolves(r, opsSecret, "blog", CapAdmin) {
			t.Error("a key left out still resolves")
		}
		if !resolves(r, localSecret, "local", CapIngest) {
			t.Error("the node's own key was touched")
		}
		if r.Project("shop").Channels().Gaze || r.Project("blog") == nil {
			t.Error("channels not switched, or the dropped project's data gone")
		}
	}
	check(r)
	s.Close()
	s = openTest(t, Options{Dir: dir})
	r = s.Registry()
	check(r)
	last, ok, err := r.LastFleetRevision()
	if err != nil || !ok || last.Number != 2 || last.AppliedAt.IsZero() {
		t.Fatalf("last revision %+v %v %v", last, ok, err)
	}

	// An older revision is refused; so is a key of another project; both
	// leave everything as it was.
	if _, err := r.Apply(rev1, FleetRevision{Number: 1}); !errors.Is(err, ErrStaleRevision) {
		t.Errorf("stale: %v", err)
	}
	if _, err := r.Apply(rev1, FleetRevision{Number: 2, Signed: []byte(`{"other":1}`)}); !errors.Is(err, ErrRevisionTaken) {
		t.Errorf("the same number, other contents: %v", err)
	}
	stolen := []DesiredProject{{ID: "blog", Channels: core.DefaultChannels(), Keys: []DesiredKey{{Name: "mine", Caps: CapAdmin, Hash: web.Hash}}}}
	if _, err := r.Apply(stolen, FleetRevision{Number: 3}); !errors.Is(err, ErrKeyElsewhere) {
		t.Errorf("another project's key: %v", err)
	}
	check(r)
	if last, _, _ := r.LastFleetRevision(); last.Number != 2 {
		t.Errorf("revision %d after refusals", last.Number)
	}
}

// TestApplyRateLimit: a project's own ingest limit is set, kept across a
// restart and a channel change, and taken out.
func TestApplyRateLimit(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, Options{Dir: dir})
	r := s.Registry()
	lim := &RateLimit{Max: 5, Window: time.Minute}
	ch, err := r.Apply([]DesiredProject{{ID: "shop", Channels: core.DefaultChannels(), RateLimit: lim}}, FleetRevision{Number: 1})
	if err != nil || len(ch) != 3 || ch[2].Op != "set-rate-limit" {
		t.Fatalf("%v %v", ch, err)
	}
	if max, w, ok := r.Project("shop").KeyRateLimit(); !ok || max != 5 || w != time.Minute {
		t.Fatalf("limit %d %s %v", max, w, ok)
	}
	if err := r.SetChannels("shop", core.AllChannels()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, Options{Dir: dir})
	r = s.Registry()
	if max, _, ok := r.Project("shop").KeyRateLimit(); !ok || max != 5 {
		t.Fatalf("after a restart: %d %v", max, ok)
	}
	if _, err := r.Apply([]DesiredProject{{ID: "shop", Channels: core.DefaultChannels()}}, FleetRevision{Number: 2}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.Project("shop").KeyRateLimit(); ok {
		t.Fatal("the limit is still there")
	}
}

// A project's rawRetention overrides the node's Retention both ways, is
// kept across a restart, and a later revision without it gives the
// project back the node's setting.
func TestApplyRawRetention(t *testing.T) {
	dir := t.TempDir()
	on, off := true, false
	want := []DesiredProject{
		{ID: "on", Channels: core.DefaultChannels(), RawRetention: &on},
		{ID: "off", Channels: core.DefaultChannels(), RawRetention: &off},
		{ID: "node", Channels: core.DefaultChannels()},
	}
	commit := func(s *Store, id, session string) {
		t.Helper()
		p := s.Registry().Project(id)
		b := &core.Batch{ProjectID: id, ProjectNum: p.Num, ReceivedAt: 1700000000000}
		b.AppendEvent(core.TypeCustom, 5, []byte(session), []byte(rawEv{session, 5, 1}.json()))
		if err := s.Sink().Commit(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(s *Store, id, session string) bool {
		return len(readRaw(t, s, s.Registry().Project(id).Num, session, 0, 1<<53)) > 0
	}
	for _, node := range []bool{false, true} {
		s := openTest(t, Options{Dir: dir, Retention: node, RetentionTTL: time.Hour})
		if !node {
			ch, err := s.Registry().Apply(want, FleetRevision{Number: 1})
			if err != nil {
				t.Fatal(err)
			}
			var set []string
			for _, c := range ch {
				if c.Op == "set-raw-retention" {
					set = append(set, c.String())
				}
			}
			if got := strings.Join(set, "; "); got != "set-raw-retention on: the node's → on; set-raw-retention off: the node's → off" {
				t.Fatalf("changes: %s", got)
			}
		}
		session := fmt.Sprintf("s-%v", node)
		for _, p := range want {
			commit(s, p.ID, session)
		}
		if !kept(s, "on", session) || kept(s, "off", session) || kept(s, "node", session) != node {
			t.Fatalf("node retention %v: kept on %v, off %v, node %v", node, kept(s, "on", session), kept(s, "off", session), kept(s, "node", session))
		}
		s.Close()
	}
	s := openTest(t, Options{Dir: dir, Retention: true, RetentionTTL: time.Hour})
	defer s.Close()
	ch, err := s.Registry().Apply([]DesiredProject{want[0], {ID: "off", Channels: core.DefaultChannels()}, want[2]}, FleetRevision{Number: 2})
	if err != nil || len(ch) != 1 || ch[0].String() != "set-raw-retention off: off → the node's" {
		t.Fatalf("%v %v", ch, err)
	}
	if _, set := s.Registry().Project("off").RawRetention(); set {
		t.Fatal("the choice is still there")
	}
	commit(s, "off", "later")
	if !kept(s, "off", "later") {
		t.Fatal("the node's retention does not apply once the project's choice is gone")
	}
}
