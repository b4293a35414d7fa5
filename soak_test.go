package main

// TestSoak runs the real binary (`presencebridge run`) against graphsim and
// ucsim while a seeded random office goes on, the sides fail and the bridge
// is killed with SIGKILL and restarted; at the end it checks, from the
// simulators' own state, that nothing the bridge set is left and nothing a
// person chose was overwritten (issue 9, sync/RULES.md §4).
//
// The office: every person has 1–3 phone lines and a Teams client. People
// ring, answer, dial, hold, retrieve, conference and hang up (or are hung
// up on); start Teams calls, join meetings, present, pick Teams do not
// disturb (or away, busy, be right back, which change nothing on the phone)
// and reset it; and change their phone by hand: an absent state with or
// without an end time (sometimes the very value the bridge shows), a reset
// of it, line DND on or off. People are spread over five profiles so that
// the bridge holds absent states and line DND: default, protected (cross
// device busy on busy + DND call protection controls presence), busyonbusy,
// dndcontrol and meetings (calendar meetings count as calls; no Teams
// presence from phone calls). The harness keeps each person's last own
// choice itself.
//
// The chaos, while the office goes on: UCServer socket drops, UCServer
// outages (createsession refused for a while, sockets dropped), Graph 429
// with Retry-After and 5xx bursts, and -soak.kills kill -9 of the bridge at
// random moments, each followed by a restart on the same database after a
// random 0–5 s gap. The chaos takes the first four fifths of the run; in
// the last fifth (at least 10 s) the office goes on without faults, so that
// the figures have calls no fault touched.
//
// The end: kills stop, faults are cleared, everyone ends their calls and
// resets Teams, the harness waits (bounded) until the bridge reports both
// sides synced, then polls the simulators until they show the expected state
// (bounded by -soak.settle), and checks:
//
//   - graphsim: no presence session of the bridge's app for anyone;
//   - ucsim: every person's absent state (the value, "available" 0 and
//     "not set" 4 being different values, and its end time to the second)
//     and every line's DND equal to that person's own last choice (an own
//     choice whose end time has passed is "not set", as the server resets
//     it);
//   - a graceful stop (SIGTERM) exits 0 and leaves no hold in the database;
//   - on the wire (graphsim's request log against ucsim's call log): no
//     setPresence for someone without a call, no clearPresence during a
//     call, no InACall for a (held) conference, no setPresence for a profile
//     that does not allow it, and exactly 1 set + keep-alives + 1 clear for
//     every call no fault touched; each after a tolerance of
//     soakWireSlack for a command already on its way when the call changed.
//
// Each mismatch is printed per user: expected against found, the
// simulator's timeline of that value (who wrote or read it, when, and
// whether the bridge was up), a name for the failure, and the user's audit
// lines from the database.
//
// Tolerated (counted and printed, not failed): the UCServer has no
// compare-and-set, so a person's change that lands between the bridge's
// read and its write of a restore may be lost; so may one that a bridge
// write decided before the change overtakes: a write reaching the UCServer
// within the bridge's own reaction time in the run (p99 of phone connected
// → setPresence for untouched calls, at least soakRaceWindow) after the
// change, unless the audit shows the bridge had seen the person's value.
//
// Figures (printed, not asserted): phone connected → setPresence on the
// wire and Teams change → phone write, p50/p99, for changes no fault or
// restart touched; restart → first write; Graph writes per clean call;
// convergence after the faults ended; the bridge's VmHWM/VmRSS at the end.
// TestSoakRSS and TestSoakHeap (soak_mem_test.go) measure memory at
// 2,000 and 10,000 users.
//
// Flags (or environment variables), after the package:
//
//	-soak.users N      PRESENCEBRIDGE_SOAK_USERS     people (default 200)
//	-soak.kills N      PRESENCEBRIDGE_SOAK_KILLS     kill -9 during the run (default 10)
//	-soak.duration D   PRESENCEBRIDGE_SOAK_DURATION  length of the office's run (default 90s)
//	-soak.rate R       PRESENCEBRIDGE_SOAK_RATE      person actions per second in all (default users/8, 5..40)
//	-soak.seed S       PRESENCEBRIDGE_SOAK_SEED      repeat a run's script (default: random, printed)
//	-soak.settle D     PRESENCEBRIDGE_SOAK_SETTLE    bound on convergence once both sides are back (default 30s)
//	-soak.keep         PRESENCEBRIDGE_SOAK_KEEP      keep the database and logs also when it passes
//
// The short run is part of `go test ./...` (skipped with -short); a long
// run by hand:
//
//	go test -run 'TestSoak$' -soak.users 2000 -soak.kills 22 -soak.duration 10m -timeout 60m .

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"
)

var (
	soakUsers    = flag.Int("soak.users", envInt("PRESENCEBRIDGE_SOAK_USERS", 200), "soak: number of people")
	soakKills    = flag.Int("soak.kills", envInt("PRESENCEBRIDGE_SOAK_KILLS", 10), "soak: kill -9 of the bridge during the run")
	soakDuration = flag.Duration("soak.duration", envDuration("PRESENCEBRIDGE_SOAK_DURATION", 90*time.Second), "soak: length of the office's run (faults and kills in the first four fifths)")
	soakRate     = flag.Float64("soak.rate", envFloat("PRESENCEBRIDGE_SOAK_RATE", 0), "soak: person actions per second in all (0: users/8, between 5 and 40)")
	soakSeed     = flag.Uint64("soak.seed", uint64(envInt("PRESENCEBRIDGE_SOAK_SEED", 0)), "soak: seed of the office and the chaos (0: random)")
	soakSettle   = flag.Duration("soak.settle", envDuration("PRESENCEBRIDGE_SOAK_SETTLE", 30*time.Second), "soak: bound on convergence once both sides are back")
	soakKeep     = flag.Bool("soak.keep", os.Getenv("PRESENCEBRIDGE_SOAK_KEEP") != "", "soak: keep the database and logs when the soak passes")
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

func envFloat(key string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(key), 64); err == nil {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

// Tolerances, each permitted by the spec or by the UCServer protocol. The
// race detector slows the bridge down by a factor of several, so under it
// the two windows that measure the bridge's own speed are doubled.
var (
	// soakWireSlack: a command the bridge decided before a call changed may
	// still reach the wire this long after the change (it was in flight).
	soakWireSlack = raceScaled(time.Second)
	// soakRaceWindow: a bridge write that reaches the UCServer this soon
	// after a person's change of the same value may have been decided
	// before the bridge could see the change; the UCServer has no
	// compare-and-set. The run's own reaction time widens it under load.
	soakRaceWindow = raceScaled(250 * time.Millisecond)
)

// Counting a call's Graph writes is about counts, not speed: the writes of
// a call are those from its start to soakWriteWindow after its end (a clear
// late on a loaded machine still counts), and a call shorter than
// soakShortCall may be over before the bridge's first write could go, in
// which case writing nothing is right (a set would be stale). How fast the
// bridge is, is the figures' to say.
const (
	soakWriteWindow = 15 * time.Second
	soakShortCall   = 5 * time.Second
)

// soakCleanMargin: a call counts as untouched by faults when no fault,
// kill or restart happened from this long before it to this long after.
const soakCleanMargin = 2 * time.Second

func raceScaled(d time.Duration) time.Duration {
	if raceEnabled {
		return 2 * d
	}
	return d
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak builds and runs the binary for minutes")
	}
	cfg := soakConfig{
		users: *soakUsers, kills: *soakKills, duration: *soakDuration, rate: *soakRate,
		seed: *soakSeed, settle: *soakSettle, keep: *soakKeep,
	}
	if cfg.seed == 0 {
		cfg.seed = uint64(time.Now().UnixNano()) & (1<<53 - 1)
	}
	if cfg.rate <= 0 {
		cfg.rate = min(max(float64(cfg.users)/8, 5), 40)
	}
	if cfg.users < 1 || cfg.kills < 0 || cfg.duration < 20*time.Second {
		t.Fatalf("soak: needs at least 1 user, 0 kills and 20s (got %d users, %d kills, %s)", cfg.users, cfg.kills, cfg.duration)
	}
	t.Logf("soak: seed %d (repeat with -soak.seed %d), %d users, %d kills, %s, %.1f actions/s",
		cfg.seed, cfg.seed, cfg.users, cfg.kills, cfg.duration, cfg.rate)
	runSoak(t, cfg)
}
