package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/sip/sipsim"
)

func TestConn_PublishLifecycle(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, User: "bridge", Password: "s3cret"})
	cfg := testConfig(sim)
	cfg.Writer, cfg.User, cfg.Password = WriterPublish, "bridge", "s3cret"
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	c := r.conn
	if c.Abilities() != psync.AbilityPresence {
		t.Fatalf("abilities %b", c.Abilities())
	}
	ctx := context.Background()
	until := time.Now().Add(time.Minute).Truncate(time.Second)
	busy := psync.PresenceMark{Presence: psync.PhoneBusy, Until: until}
	if err := c.SetPresence(ctx, ben, busy, nil); err != nil {
		t.Fatal(err)
	}
	r.waitFor(5*time.Second, "presence event", func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhonePresenceChanged && ev.Presence == psync.PhoneBusy && ev.Until.Equal(until)
	})
	p, ok := sim.PublishedPresence("202")
	if !ok || p.Activity() != "on-the-phone" || p.Basic != "open" {
		t.Fatalf("published %+v %v", p, ok)
	}
	body, _ := sim.Published("202")
	for _, want := range []string{"<dm:person", "<rpid:activities><rpid:on-the-phone/>", "<dm:note>", `entity="sip:202@`} {
		if !strings.Contains(body, want) {
			t.Fatalf("body lacks %q:\n%s", want, body)
		}
	}

	// Keep-alive of the same presence: a body-less refresh of the same
	// publication (SIP-If-Match), not a second one.
	until2 := until.Add(time.Minute)
	if err := c.SetPresence(ctx, ben, psync.PresenceMark{Presence: psync.PhoneBusy, Until: until2}, []psync.PresenceMark{busy}); err != nil {
		t.Fatal(err)
	}
	if n := sim.Publications("202"); n != 1 {
		t.Fatalf("%d publications after a refresh", n)
	}
	// DND: busy + "Do not disturb".
	dnd := psync.PresenceMark{Presence: psync.PhoneDND, Until: until2}
	if err := c.SetPresence(ctx, ben, dnd, []psync.PresenceMark{{Presence: psync.PhoneBusy, Until: until2}}); err != nil {
		t.Fatal(err)
	}
	if p, _ := sim.PublishedPresence("202"); p.Activity() != "busy" || p.Note != "Do not disturb" {
		t.Fatalf("dnd published as %+v", p)
	}
	// Not what the bridge holds: refused, nothing sent.
	before := sim.Stats().Publishes
	if err := c.SetPresence(ctx, ben, psync.PresenceMark{Presence: psync.PhoneAway}, []psync.PresenceMark{busy}); !errors.Is(err, psync.ErrChangedByUser) {
		t.Fatalf("stale own: %v", err)
	}
	if sim.Stats().Publishes != before {
		t.Fatal("a refused write was sent")
	}

	// The server lost the entity-tag (412): a full PUBLISH starts over.
	c.mu.Lock()
	c.pubs["ben"].etag = "lost-etag"
	c.mu.Unlock()
	away := psync.PresenceMark{Presence: psync.PhoneAway, Until: until2}
	st0 := sim.Stats()
	if err := c.SetPresence(ctx, ben, away, []psync.PresenceMark{dnd}); err != nil {
		t.Fatalf("after 412: %v", err)
	}
	// Each PUBLISH is first challenged (407), so count the answered ones.
	st1 := sim.Stats()
	if n := (st1.Publishes - st0.Publishes) - (st1.Challenges - st0.Challenges); n != 2 {
		t.Fatalf("%d PUBLISHes for a lost entity-tag, want the refused one and a full one", n)
	}
	if p, _ := sim.PublishedPresence("202"); p.Activity() != "away" {
		t.Fatalf("away published as %+v", p)
	}

	// Restore to not-set removes the publication (Expires: 0).
	if err := c.RestorePresence(ctx, ben, []psync.PresenceMark{away}, psync.PresenceMark{Presence: psync.PhoneNotSet}); err != nil {
		t.Fatal(err)
	}
	r.waitFor(5*time.Second, "not-set event", func(ev psync.PhoneEvent) bool {
		return ev.Kind == psync.PhonePresenceChanged && ev.Presence == psync.PhoneNotSet
	})
	eventually(t, 2*time.Second, "our publication removed", func() bool {
		b, ok := sim.Published("202")
		return !ok || !strings.Contains(b, "away")
	})
	// Already not set: nothing to do.
	if err := c.RestorePresence(ctx, ben, []psync.PresenceMark{away}, psync.PresenceMark{Presence: psync.PhoneNotSet}); err != nil {
		t.Fatal(err)
	}
}

func TestConn_PublishRefused(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}})
	cfg := testConfig(sim)
	cfg.Writer = WriterPublish
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	sim.RefusePublish(403)
	err := r.conn.SetPresence(context.Background(), ben, psync.PresenceMark{Presence: psync.PhoneBusy}, nil)
	if !errors.Is(err, psync.ErrRejected) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("%v", err)
	}
}

func TestPIDF_Shapes(t *testing.T) {
	for p, want := range map[psync.PhonePresence]string{
		psync.PhoneBusy:      "<rpid:on-the-phone/>",
		psync.PhoneDND:       "<rpid:busy/></rpid:activities><dm:note>Do not disturb</dm:note>",
		psync.PhoneAway:      "<rpid:away/>",
		psync.PhoneOffline:   "<basic>closed</basic>",
		psync.PhoneAvailable: "<basic>open</basic>",
	} {
		if b := string(pidf("201", "pbx.example", p)); !strings.Contains(b, want) {
			t.Errorf("%s: %s lacks %s", p, b, want)
		}
	}
}

// A server that keeps a publication for less than asked (its maximum) gets
// it refreshed by the connector until the end the engine asked for.
func TestConn_PublishRefreshedBelowServerMaximum(t *testing.T) {
	sim := startSim(t, sipsim.Options{Extensions: []string{"202"}, MaxExpires: 2})
	cfg := testConfig(sim)
	cfg.Writer = WriterPublish
	r := runConn(t, cfg, []psync.User{ben})
	r.waitSynced()
	until := time.Now().Add(time.Minute)
	busy := psync.PresenceMark{Presence: psync.PhoneBusy, Until: until}
	if err := r.conn.SetPresence(context.Background(), ben, busy, nil); err != nil {
		t.Fatal(err)
	}
	before := sim.Stats().Publishes
	// Granted 2 s each time: three refreshes take about 5 s; the
	// publication must be there all along.
	deadline := time.Now().Add(10 * time.Second)
	for sim.Stats().Publishes < before+3 {
		if _, ok := sim.PublishedPresence("202"); !ok {
			t.Fatal("the publication lapsed")
		}
		if time.Now().After(deadline) {
			t.Fatalf("not refreshed: %+v", sim.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := sim.Publications("202"); n != 1 {
		t.Fatalf("%d publications", n)
	}
	// The engine's own keep-alive still matches what it set.
	if err := r.conn.SetPresence(context.Background(), ben, busy, []psync.PresenceMark{busy}); err != nil {
		t.Fatalf("keep-alive after server refreshes: %v", err)
	}
}
