package service_test

import (
	"testing"
)

// A side built by a factory that cannot rebuild it applies a change of its
// settings at the next start, and the settings say so (the console shows
// it and offers the restart). The engine's own settings still apply at once.
func TestLive_SettingsThatWaitForTheNextStartSaySo(t *testing.T) {
	b := startBridge(t, bridgeOpts{})
	if err := b.run.Local.SetSetting(ctx(t), "ucserver.user", "bridge2"); err != nil {
		t.Fatal(err)
	}
	if err := b.run.Local.SetSetting(ctx(t), "teams.lease", "20m"); err != nil {
		t.Fatal(err)
	}
	vs, err := b.run.Local.Settings(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		switch v.Key {
		case "ucserver.user":
			if v.Pending == "" {
				t.Errorf("ucserver.user: not marked as waiting for the next start")
			}
		case "teams.lease":
			if v.Pending != "" {
				t.Errorf("teams.lease marked pending (%q): the engine applies it at once", v.Pending)
			}
		}
	}
}
