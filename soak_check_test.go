package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams/graphsim"
	"github.com/presencebridge/presencebridge/sync/ucserver/ucsim"
)

// The checks of the end state, their diagnosis, and the figures.

// mismatch is one value a simulator shows that the end state must not.
type mismatch struct {
	p       *person
	line    string // the line of a line-DND mismatch
	teams   *graphsim.Session
	expA    ucsim.AbsentState
	gotA    ucsim.AbsentState
	expDND  bool
	gotDND  bool
	kind    string // for absent and line mismatches: the diagnosis
	why     string
	tolerID string // non-empty: a race the protocol permits
}

func (m mismatch) field() string {
	switch {
	case m.teams != nil:
		return "Teams session"
	case m.line != "":
		return "DND on " + m.line
	}
	return "absent state"
}

// mismatches compares both simulators with everyone's own last choice.
func (w *soakWorld) mismatches(at time.Time) []mismatch {
	var out []mismatch
	for _, p := range w.people {
		us, ok := w.uc.UserState(p.contact)
		if !ok {
			out = append(out, mismatch{p: p, kind: "GONE", why: "the person is missing in ucsim"})
			continue
		}
		exp := p.expectedAbsent(at)
		if got := us.Absent; got.State != exp.State || !sameSecond(got.To, exp.To) {
			out = append(out, mismatch{p: p, expA: exp, gotA: ucsim.AbsentState{State: got.State, To: got.To}})
		}
		for _, l := range us.Lines {
			if l.DND != p.dnd[l.URI] {
				out = append(out, mismatch{p: p, line: l.URI, expDND: p.dnd[l.URI], gotDND: l.DND})
			}
		}
		ss, err := w.graph.Sessions(p.teamsID)
		if err != nil {
			out = append(out, mismatch{p: p, kind: "GONE", why: err.Error()})
			continue
		}
		for _, s := range ss {
			if strings.EqualFold(s.AppID, e2eApp) {
				s := s
				out = append(out, mismatch{p: p, teams: &s})
			}
		}
	}
	return out
}

// sameSecond compares end times as the UCServer keeps them (zero: none).
func sameSecond(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	return a.Unix() == b.Unix()
}

func absentText(a ucsim.AbsentState) string {
	names := []string{"available(0)", "out-of-office(1)", "busy(2)", "dnd(3)", "not-set(4)"}
	s := fmt.Sprintf("state %d", a.State)
	if a.State >= 0 && a.State < len(names) {
		s = names[a.State]
	}
	if !a.To.IsZero() {
		s += " until " + a.To.Local().Format("15:04:05")
	}
	return s
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// fieldTimeline is everything the UCServer log says about one value of one
// person: writes by the person, the bridge and the server, and reads.
func (r *soakRecorder) fieldTimeline(p *person, line string) []ucsim.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ucsim.Change
	for _, c := range r.changes {
		switch {
		case line == "" && c.ContactID == p.contact && (c.Kind == ucsim.ChangeAbsent || c.Kind == ucsim.ReadAbsent):
			out = append(out, c)
		case line != "" && c.LineURI == line && (c.Kind == ucsim.ChangeLineDND || c.Kind == ucsim.ReadLine):
			out = append(out, c)
		}
	}
	return out
}

func isWrite(c ucsim.Change) bool {
	return c.Kind == ucsim.ChangeAbsent || c.Kind == ucsim.ChangeLineDND
}

// diagnose names what went wrong with an absent-state or line mismatch,
// from the UCServer's log of that value; it marks the races the protocol
// permits as tolerated.
func (res *soakResult) diagnose(m *mismatch) {
	if m.teams != nil || m.kind == "GONE" {
		if m.teams != nil {
			m.kind = "TEAMS-SESSION-LEFT"
			m.why = fmt.Sprintf("the bridge's Teams session %s/%s (last set %s, expires %s) is left with no phone call",
				m.teams.Availability, m.teams.Activity, res.rel(m.teams.SetAt), m.teams.ExpiresAt.Local().Format("15:04:05"))
		}
		return
	}
	tl := res.rec.fieldTimeline(m.p, m.line)
	pi := -1 // the person's last own change of this value
	for i, c := range tl {
		if isWrite(c) && c.By == ucsim.ByPerson {
			pi = i
		}
	}
	var pt time.Time // when the person chose it (zero: never, the initial value)
	if pi >= 0 {
		pt = tl[pi].Time
	}
	differs := func(c ucsim.Change) bool {
		if m.line != "" {
			return c.DND != m.expDND
		}
		return c.Absent.State != m.p.absent.State || !sameSecond(c.Absent.To, m.p.absent.To)
	}
	// After the person's choice: the bridge's first write, its first write
	// of another value, and the last write of anyone.
	fb, fw, lw := -1, -1, -1
	for i := pi + 1; i < len(tl); i++ {
		c := tl[i]
		if !isWrite(c) {
			continue
		}
		lw = i
		if fb < 0 && c.By == soakBridgeContact {
			fb = i
		}
		if fw < 0 && c.By == soakBridgeContact && differs(c) {
			fw = i
		}
	}
	if fw < 0 {
		m.kind, m.why = "UNEXPLAINED", "no bridge write changed the person's choice; the log does not explain the value"
		return
	}
	// The protocol's race: the bridge read the value, the person changed it,
	// then the bridge wrote (a restore is a read, then a write).
	restoreLike := fb == fw && (m.line != "" || tl[fw].Absent.To.IsZero())
	for i := pi - 1; i >= 0 && pi >= 0 && restoreLike; i-- {
		c := tl[i]
		if c.By != soakBridgeContact {
			continue
		}
		if isWrite(c) || tl[fw].Time.Sub(c.Time) > time.Second {
			break
		}
		m.kind, m.tolerID = "NO-CAS-RACE", "read-write"
		m.why = fmt.Sprintf("the person's change (%s) came between the bridge's read (%s) and its write (%s); the UCServer has no compare-and-set",
			res.rel(pt), res.rel(c.Time), res.rel(tl[fw].Time))
		return
	}
	// A write decided before the bridge could see the person's change
	// overtook it: even one of the same value, which the bridge then takes
	// for its own (line DND has no end time to tell them apart).
	if pi >= 0 && tl[fb].Time.Sub(pt) < max(res.raceWindow, soakRaceWindow) && !res.knew(m, tl[fb]) {
		m.kind, m.tolerID = "NO-CAS-RACE", "crossed"
		m.why = fmt.Sprintf("a bridge write reached the UCServer %s after the person's change (%s), within the bridge's reaction time (%s): decided before the bridge could have seen it",
			tl[fb].Time.Sub(pt).Round(time.Millisecond), res.rel(pt), max(res.raceWindow, soakRaceWindow).Round(time.Millisecond))
		return
	}
	last := tl[lw]
	at := "the person's choice " + res.rel(pt) + " [" + res.lifeAt(pt) + "]"
	if pi < 0 {
		at = "the person's initial value"
	}
	// The bridge's first write after the person's choice, when a restart
	// came between them: the new process judged the person's value by what
	// its journal said.
	var notes []string
	for i := pi + 1; i < len(tl); i++ {
		c := tl[i]
		if c.By != soakBridgeContact || !isWrite(c) {
			continue
		}
		if pi >= 0 && res.lifeAt(c.Time) != res.lifeAt(pt) && !pt.Before(res.lives[0].start) {
			v := "DND " + onOffText(c.DND)
			if m.line == "" {
				v = absentText(c.Absent)
			}
			notes = append(notes, fmt.Sprintf("a restart came between; the first bridge write after the choice was %s at %s [%s]", v, res.rel(c.Time), res.lifeAt(c.Time)))
		}
		break
	}
	// A yield to a value the bridge itself had written last: from then on
	// the bridge takes its own value for the person's.
	what := "presence"
	if m.line != "" {
		what = "device " + m.line
	}
	for _, d := range res.audit[psync.UserID(m.p.contact)] {
		if d.What != what || d.Outcome != psync.OutcomeYielded || d.At.Before(pt) {
			continue
		}
		var before *ucsim.Change
		for i := range tl {
			if tl[i].Time.After(d.At) {
				break
			}
			if isWrite(tl[i]) {
				before = &tl[i]
			}
		}
		if before != nil && before.By == soakBridgeContact {
			notes = append(notes, fmt.Sprintf("at %s [%s] the bridge yielded (%s -> %s) though the value was its own write of %s",
				res.rel(d.At), res.lifeAt(d.At), d.Old, d.New, res.rel(before.Time)))
			break
		}
	}
	note := ""
	if len(notes) > 0 {
		note = "; " + strings.Join(notes, "; ")
	}
	if m.line != "" {
		switch {
		case m.gotDND && last.By == soakBridgeContact && last.DND:
			m.kind, m.why = "STUCK-LINE-DND", fmt.Sprintf("line DND the bridge set at %s [%s] is still on though no reason is left%s", res.rel(last.Time), res.lifeAt(last.Time), note)
		case !m.gotDND && last.By == soakBridgeContact:
			m.kind, m.why = "OWN-LINE-DND-WIPED", fmt.Sprintf("the bridge switched off at %s [%s] the DND of %s%s", res.rel(last.Time), res.lifeAt(last.Time), at, note)
		default:
			m.kind, m.why = "LINE-DND-OVERWRITTEN", fmt.Sprintf("the bridge wrote %s at %s over %s%s", onOffText(tl[fw].DND), res.rel(tl[fw].Time), at, note)
		}
		return
	}
	// The value the bridge imposed (with its lease as the end time) last
	// before the person's change, if it was still in place then.
	var held *ucsim.Change
	for i := pi - 1; i >= 0; i-- {
		c := tl[i]
		if !isWrite(c) || c.By == ucsim.ByPerson && c.Absent.State == m.p.absent.State {
			continue // the person setting the same value more than once
		}
		if c.By == soakBridgeContact && !c.Absent.To.IsZero() {
			held = &tl[i]
		}
		break
	}
	own := m.p.absent
	restored := fmt.Sprintf("%s at %s [%s]", absentText(last.Absent), res.rel(last.Time), res.lifeAt(last.Time))
	switch {
	case last.By == soakBridgeContact && !last.Absent.To.IsZero() && m.gotA.State == last.Absent.State && sameSecond(m.gotA.To, last.Absent.To):
		m.kind, m.why = "STUCK", fmt.Sprintf("the bridge's own %s (set %s [%s], its lease as the end time) outlived its reason%s",
			absentText(m.gotA), res.rel(last.Time), res.lifeAt(last.Time), note)
	case last.By != soakBridgeContact:
		m.kind, m.why = "UNEXPLAINED", "the last write was not the bridge's"
	case held != nil && own.State == held.Absent.State && (tl[fw].Absent.State == held.Absent.State || tl[fw].Absent.To.IsZero()):
		// The bridge's first write over the person's re-set was a refresh
		// of its own value or a restore: it took the person's value for
		// its own.
		m.kind, m.why = "OWN-RE-SET-WIPED", fmt.Sprintf("the person set the value the bridge held (%s) again by hand: %s; the bridge took it for its own and finally wrote %s%s",
			absentText(held.Absent), at, restored, note)
	case m.expA.State == ucsim.AbsentNotAbsent && m.gotA.State == ucsim.AbsentNotSet:
		m.kind, m.why = "AVAILABLE-AS-NOT-SET", fmt.Sprintf("the bridge restored 'not set'(4) over the person's own 'available'(0) (%s): %s%s", at, restored, note)
	case m.gotA.State == m.expA.State && !sameSecond(m.gotA.To, m.expA.To):
		m.kind, m.why = "END-TIME-LOST", fmt.Sprintf("the bridge restored the person's %s (%s) as %s%s", absentText(m.expA), at, restored, note)
	case !own.To.IsZero() && m.expA.State == ucsim.AbsentNotSet && m.gotA.State == own.State && m.gotA.To.IsZero() && last.Time.Before(own.To):
		m.kind, m.why = "END-TIME-LOST", fmt.Sprintf("the bridge restored the person's %s (%s) as %s, which then outlived the person's end time%s", absentText(own), at, restored, note)
	case !own.To.IsZero() && m.expA.State == ucsim.AbsentNotSet && m.gotA.State == own.State:
		m.kind, m.why = "EXPIRED-RESTORED", fmt.Sprintf("the bridge restored the person's %s after its end time: %s%s", absentText(own), restored, note)
	default:
		m.kind, m.why = "OVERWRITTEN", fmt.Sprintf("the bridge wrote %s over the person's %s (%s)%s", restored, absentText(m.expA), at, note)
	}
}

// knew reports whether the audit says the bridge had seen the person's
// value when it decided the write w: the decision names it as the old value
// and writes another. A write of the same value (a refresh) cannot tell,
// and neither can a decision lost with a kill: then it says no.
func (res *soakResult) knew(m *mismatch, w ucsim.Change) bool {
	what, wrote, own := "presence", presenceName(w.Absent.State), presenceName(m.p.absent.State)
	if m.line != "" {
		what, wrote, own = "device "+m.line, onOffText(w.DND), onOffText(m.expDND)
	}
	for _, d := range res.audit[psync.UserID(m.p.contact)] {
		if d.What != what || d.New != wrote || d.At.Before(w.Time.Add(-50*time.Millisecond)) || d.At.After(w.Time.Add(5*time.Second)) {
			continue
		}
		return d.Old == own && d.New != own
	}
	return false
}

// reactionWindow is how long the bridge took in this run to put an
// untouched phone call on the wire (p99, at least soakRaceWindow): under
// load a write reaching the UCServer this soon after a person's change may
// have been decided before the bridge saw the change.
func (res *soakResult) reactionWindow() time.Duration {
	steps := res.rec.callSteps()
	eps := res.episodes(steps)
	res.rec.mu.Lock()
	byUser := map[string][]time.Time{}
	for _, gw := range res.rec.writes {
		if !gw.clear {
			byUser[gw.user] = append(byUser[gw.user], gw.at)
		}
	}
	res.rec.mu.Unlock()
	var lat []time.Duration
	for _, e := range eps {
		if !e.p.prof.SetTeamsPresence || e.to.Sub(e.from) < time.Second || !res.rec.clean(e.from, e.from.Add(time.Second)) {
			continue
		}
		for _, at := range byUser[e.p.teamsID] {
			if !at.Before(e.from) && !at.After(e.to) {
				lat = append(lat, at.Sub(e.from))
				break
			}
		}
	}
	_, p99, _ := percentiles(lat)
	return max(p99, soakRaceWindow)
}

// rel formats a time relative to the start of the office.
func (res *soakResult) rel(t time.Time) string {
	if t.IsZero() {
		return "(never)"
	}
	return fmt.Sprintf("%+.3fs", t.Sub(res.w.start).Seconds())
}

// up reports whether a bridge process was running at t.
func (res *soakResult) up(t time.Time) bool {
	for _, l := range res.lives {
		if !t.Before(l.start) && (l.end.IsZero() || t.Before(l.end)) {
			return true
		}
	}
	return false
}

func (res *soakResult) lifeAt(t time.Time) string {
	if len(res.lives) > 0 && t.Before(res.lives[0].start) {
		return "before the first start"
	}
	for _, l := range res.lives {
		if !t.Before(l.start) && (l.end.IsZero() || t.Before(l.end)) {
			return fmt.Sprintf("life %d", l.n)
		}
	}
	return "bridge down"
}

func (res *soakResult) changeText(c ucsim.Change) string {
	who := "person"
	switch c.By {
	case soakBridgeContact:
		who = "bridge"
	case ucsim.ByServer:
		who = "server"
	}
	var what string
	switch c.Kind {
	case ucsim.ChangeAbsent:
		what = "set " + absentText(c.Absent)
	case ucsim.ReadAbsent:
		what = "read " + absentText(c.Absent)
	case ucsim.ChangeLineDND:
		what = "set DND " + onOffText(c.DND)
	case ucsim.ReadLine:
		what = "read DND " + onOffText(c.DND)
	}
	return fmt.Sprintf("%s  %-6s %-32s [%s]", res.rel(c.Time), who, what, res.lifeAt(c.Time))
}

// --- the wire -----------------------------------------------------------------

// callStep is a person's calls right after a change.
type callStep struct {
	at       time.Time
	inCall   bool // a connected, held or conferenced call
	conf     bool // a call in conference, or one held straight from the conference
	heldConf bool // a held call that was a conference, and no live conference
	plain    bool // a connected or held call that never was a conference
	confOnly bool // every active call is or was a conference
	// marked: an active call the phone system still marks as a conference
	// (retrieved and held again, say): whether it is one now is the phone
	// system's to say, so either activity is right while it lasts.
	marked bool
}

// callSteps replays the UCServer's call log per person.
func (r *soakRecorder) callSteps() map[string][]callStep {
	type cs struct {
		state int
		conf  bool // it has been a conference
		// heldConf: put on hold straight from the conference. A conference
		// retrieved and held again is left out: whether the retrieved call
		// is still one is the phone system's to say, not the harness's.
		heldConf bool
	}
	live := map[string]map[string]cs{}
	out := map[string][]callStep{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.changes {
		if c.Kind != ucsim.ChangeCall {
			continue
		}
		m := live[c.ContactID]
		if m == nil {
			m = map[string]cs{}
			live[c.ContactID] = m
		}
		switch c.CallState {
		case ucsim.CallDestroyed, ucsim.CallDisconnected:
			delete(m, c.ConnectionID)
		default:
			prev := m[c.ConnectionID]
			m[c.ConnectionID] = cs{c.CallState, c.Conferenced,
				c.CallState == ucsim.CallHold && (prev.state == ucsim.CallConferenced || prev.heldConf && prev.state == ucsim.CallHold)}
		}
		st := callStep{at: c.Time, confOnly: true}
		for _, x := range m {
			active := x.state == ucsim.CallConnected || x.state == ucsim.CallHold || x.state == ucsim.CallConferenced
			if !active {
				continue
			}
			st.inCall = true
			if x.state == ucsim.CallConferenced || x.heldConf {
				st.conf = true
			}
			if !x.conf {
				st.plain = true
				st.confOnly = false
			} else {
				st.marked = true
			}
		}
		if !st.inCall {
			st.confOnly = false
		}
		st.heldConf = st.conf
		for _, x := range m {
			if x.state == ucsim.CallConferenced {
				st.heldConf = false
			}
		}
		out[c.ContactID] = append(out[c.ContactID], st)
	}
	return out
}

// holds reports whether pred held for the whole of [from, to].
func holds(steps []callStep, from, to time.Time, pred func(callStep) bool) bool {
	cur := callStep{}
	for _, s := range steps {
		if s.at.After(from) {
			break
		}
		cur = s
	}
	if !pred(cur) {
		return false
	}
	for _, s := range steps {
		if s.at.After(from) && !s.at.After(to) && !pred(s) {
			return false
		}
	}
	return true
}

// wireIssue is a Graph write the current target did not want.
type wireIssue struct {
	kind string
	p    *person
	gw   graphWrite
}

func (res *soakResult) wireIssues(steps map[string][]callStep) []wireIssue {
	var out []wireIssue
	res.rec.mu.Lock()
	writes := slices.Clone(res.rec.writes)
	res.rec.mu.Unlock()
	for _, gw := range writes {
		p := res.w.byID[gw.user]
		if p == nil || gw.at.Before(res.w.start) {
			continue
		}
		st := steps[p.contact]
		from := gw.at.Add(-soakWireSlack)
		switch {
		case gw.clear:
			if holds(st, from, gw.at, func(s callStep) bool { return s.inCall }) {
				out = append(out, wireIssue{"CLEAR-DURING-CALL", p, gw})
			}
		case !p.prof.SetTeamsPresence:
			out = append(out, wireIssue{"SET-FORBIDDEN-BY-PROFILE", p, gw})
		case holds(st, from, gw.at, func(s callStep) bool { return !s.inCall }):
			out = append(out, wireIssue{"STALE-SET", p, gw})
		case strings.EqualFold(gw.activity, psync.ActivityInACall) && holds(st, from, gw.at, func(s callStep) bool { return s.conf }):
			kind := "CONFERENCE-SHOWN-AS-CALL"
			if holds(st, gw.at, gw.at, func(s callStep) bool { return s.heldConf }) {
				kind = "HELD-CONFERENCE-SHOWN-AS-CALL"
			}
			out = append(out, wireIssue{kind, p, gw})
		case strings.EqualFold(gw.activity, psync.ActivityInAConferenceCall) && holds(st, from, gw.at, func(s callStep) bool { return s.inCall && !s.conf && s.plain && !s.confOnly && !s.marked }):
			out = append(out, wireIssue{"CALL-SHOWN-AS-CONFERENCE", p, gw})
		}
	}
	return out
}

// episode is a stretch in which a person was in a call.
type episode struct {
	p          *person
	from, to   time.Time
	plainOnly  bool // never a conference
	connection int  // how many calls took part
}

func (res *soakResult) episodes(steps map[string][]callStep) []episode {
	var out []episode
	res.rec.mu.Lock()
	changes := slices.Clone(res.rec.changes)
	res.rec.mu.Unlock()
	for contact, st := range steps {
		p := res.w.byID[contact]
		var cur *episode
		for _, s := range st {
			switch {
			case s.inCall && cur == nil:
				cur = &episode{p: p, from: s.at, plainOnly: !s.conf}
			case s.inCall:
				cur.plainOnly = cur.plainOnly && !s.conf
			case !s.inCall && cur != nil:
				cur.to = s.at
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	// How many calls took part in each episode.
	for i := range out {
		e := &out[i]
		seen := map[string]bool{}
		for _, c := range changes {
			if c.Kind == ucsim.ChangeCall && c.ContactID == e.p.contact && !c.Time.Before(e.from) && !c.Time.After(e.to) &&
				(c.CallState == ucsim.CallConnected || c.CallState == ucsim.CallConferenced || c.CallState == ucsim.CallHold) {
				seen[c.ConnectionID] = true
			}
		}
		e.connection = len(seen)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].from.Before(out[j].from) })
	return out
}

// percentiles returns p50, p99 and max of ds (nearest rank).
func percentiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[min(len(s)-1, (len(s)*p+99)/100-1)] }
	return rank(50), rank(99), s[len(s)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// report prints the figures and every failure, and says whether the soak
// passed.
func report(t *testing.T, res *soakResult) bool {
	ok := true
	fail := func(format string, args ...any) {
		ok = false
		t.Errorf(format, args...)
	}
	rec := res.rec
	w := res.w

	// The process lives.
	kills, crashes := 0, 0
	for _, l := range res.lives {
		switch {
		case l.how == "killed":
			kills++
		case strings.HasPrefix(l.how, "exited by itself"):
			crashes++
			fail("soak: bridge life %d (pid %d) %s at %s; last lines of %s:\n%s", l.n, l.pid, l.how, res.rel(l.end), l.logPath, tailFile(l.logPath, 20))
		}
	}
	t.Logf("soak: %d bridge lives, %d kill -9, %d crashes; faults and kills:\n  %s", len(res.lives), kills, crashes, strings.Join(res.chaos, "\n  "))
	var acts []string
	for name, n := range res.actions {
		acts = append(acts, fmt.Sprintf("%s %d", name, n))
	}
	sort.Strings(acts)
	t.Logf("soak: the office did: %s", strings.Join(acts, ", "))

	// The end state.
	var tolerated, failed []mismatch
	for i := range res.mismatches {
		m := &res.mismatches[i]
		if m.kind != "GONE" {
			m.kind, m.why, m.tolerID = "", "", "" // again, now with the audit
		}
		res.diagnose(m)
		if m.tolerID != "" {
			tolerated = append(tolerated, *m)
		} else {
			failed = append(failed, *m)
		}
	}
	t.Logf("soak: both sides back %s after the faults ended; the simulators showed the expected state %s after that (bound %s)",
		durText(res.sidesBack), durText(res.converged), w.cfg.settle)
	for _, m := range tolerated {
		t.Logf("soak: TOLERATED %s: %s %s: expected %s, found %s: %s", m.kind, m.p.contact, m.field(), m.expText(), m.gotText(), m.why)
	}
	if len(failed) > 0 {
		kinds := map[string]int{}
		for _, m := range failed {
			kinds[m.kind]++
		}
		var ks []string
		for k, n := range kinds {
			ks = append(ks, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(ks)
		fail("soak: %d values differ from the people's own last choices after the settle (%s):", len(failed), strings.Join(ks, ", "))
		var all strings.Builder
		for i, m := range failed {
			text := res.mismatchText(m)
			all.WriteString(text + "\n")
			if i < 40 {
				t.Log(text)
			}
		}
		if len(failed) > 40 {
			t.Logf("soak: ... %d more in mismatches.txt", len(failed)-40)
		}
		_ = os.WriteFile(filepath.Join(w.dir, "mismatches.txt"), []byte(all.String()), 0o600)
	}
	if res.holdsBridge > 0 {
		fail("soak: at the end the bridge still counted %d holds though nobody was in a call or in Teams", res.holdsBridge)
	}
	if res.stopHow != "stopped" {
		fail("soak: the graceful stop at the end: %s (after %s); last lines:\n%s", res.stopHow, res.stopTook.Round(time.Millisecond), tailFile(res.lives[len(res.lives)-1].logPath, 20))
	} else {
		t.Logf("soak: graceful stop took %s", res.stopTook.Round(time.Millisecond))
	}
	if len(res.holdsLeft) > 0 {
		var hs []string
		for _, h := range res.holdsLeft {
			hs = append(hs, h.Key().String()+" set="+h.Set)
		}
		fail("soak: %d holds left in the database after the stop: %s", len(res.holdsLeft), strings.Join(hs, "; "))
	}

	// The wire.
	steps := rec.callSteps()
	issues := res.wireIssues(steps)
	if len(issues) > 0 {
		kinds := map[string]int{}
		for _, is := range issues {
			kinds[is.kind]++
		}
		var ks []string
		for k, n := range kinds {
			ks = append(ks, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(ks)
		fail("soak: %d Graph writes the target did not want (after %s slack): %s", len(issues), soakWireSlack, strings.Join(ks, ", "))
		var all strings.Builder
		for i, is := range issues {
			text := res.wireText(is, steps[is.p.contact])
			all.WriteString(text + "\n")
			if i < 20 {
				t.Log(text)
			}
		}
		if len(issues) > 20 {
			t.Logf("soak: ... %d more in wire.txt", len(issues)-20)
		}
		_ = os.WriteFile(filepath.Join(w.dir, "wire.txt"), []byte(all.String()), 0o600)
	}

	// Figures.
	eps := res.episodes(steps)
	res.figures(t, eps, fail)
	if res.rss > 0 {
		t.Logf("soak: the bridge at the end: VmHWM %d kB, VmRSS %d kB (race detector: %v)", res.hwm, res.rss, raceEnabled)
	}
	return ok
}

func durText(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

func (m mismatch) expText() string {
	switch {
	case m.teams != nil:
		return "no session"
	case m.line != "":
		return onOffText(m.expDND)
	}
	return absentText(m.expA)
}

func (m mismatch) gotText() string {
	switch {
	case m.teams != nil:
		return m.teams.Availability + "/" + m.teams.Activity
	case m.line != "":
		return onOffText(m.gotDND)
	}
	return absentText(m.gotA)
}

// mismatchText is the per-user diff: what and why, the value's timeline
// from the UCServer's log, and the user's audit lines.
func (res *soakResult) mismatchText(m mismatch) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (profile %s) %s: expected %s, found %s\n    %s", m.kind, m.p.contact, m.p.prof.Name, m.field(), m.expText(), m.gotText(), m.why)
	if m.teams == nil {
		tl := res.rec.fieldTimeline(m.p, m.line)
		if len(tl) > 14 {
			tl = tl[len(tl)-14:]
		}
		b.WriteString("\n    ucsim log of this value:")
		for _, c := range tl {
			b.WriteString("\n      " + res.changeText(c))
		}
	} else {
		res.rec.mu.Lock()
		var ws []string
		for _, gw := range res.rec.writes {
			if gw.user == m.p.teamsID {
				op := "set " + gw.activity
				if gw.clear {
					op = "clear"
				}
				ws = append(ws, fmt.Sprintf("%s %s -> %d [%s]", res.rel(gw.at), op, gw.status, res.lifeAt(gw.at)))
			}
		}
		res.rec.mu.Unlock()
		if len(ws) > 10 {
			ws = ws[len(ws)-10:]
		}
		b.WriteString("\n    graphsim writes: " + strings.Join(ws, "; "))
	}
	audit := res.audit[psync.UserID(m.p.contact)]
	var lines []string
	for _, d := range audit {
		if d.Outcome == psync.OutcomeObserved && m.teams == nil {
			continue
		}
		if (m.teams != nil) != (d.Side == psync.SideTeams) {
			continue
		}
		if m.line != "" && d.What != "device "+m.line {
			continue
		}
		if m.line == "" && m.teams == nil && d.What != "presence" {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s", res.rel(d.At), d.String()))
	}
	if len(lines) > 12 {
		lines = lines[len(lines)-12:]
	}
	b.WriteString("\n    audit:")
	for _, l := range lines {
		b.WriteString("\n      " + l)
	}
	return b.String()
}

func (res *soakResult) wireText(is wireIssue, st []callStep) string {
	op := "setPresence " + is.gw.activity
	if is.gw.clear {
		op = "clearPresence"
	}
	var calls []string
	for i, s := range st {
		inWindow := s.at.After(is.gw.at.Add(-10*time.Second)) && s.at.Before(is.gw.at.Add(2*time.Second))
		inForce := !s.at.After(is.gw.at.Add(-10*time.Second)) && (i+1 == len(st) || st[i+1].at.After(is.gw.at.Add(-10*time.Second)))
		if inWindow || inForce {
			state := "no call"
			switch {
			case s.heldConf:
				state = "held conference"
			case s.conf:
				state = "conference"
			case s.inCall:
				state = "call"
			}
			calls = append(calls, res.rel(s.at)+" "+state)
		}
	}
	// How long the call had already been as it was, and how long the
	// process had been running: a command in flight, or one that waited?
	var since time.Time
	for _, s := range st {
		if s.at.After(is.gw.at) {
			break
		}
		since = s.at
	}
	started := ""
	for _, l := range res.lives {
		if !is.gw.at.Before(l.start) && (l.end.IsZero() || is.gw.at.Before(l.end)) {
			started = fmt.Sprintf(", %s after the process started", is.gw.at.Sub(l.start).Round(time.Millisecond))
		}
	}
	return fmt.Sprintf("%s %s (profile %s): %s at %s -> %d [%s%s], %s after the calls last changed; calls around it: %s",
		is.kind, is.p.contact, is.p.prof.Name, op, res.rel(is.gw.at), is.gw.status, res.lifeAt(is.gw.at), started,
		is.gw.at.Sub(since).Round(time.Millisecond), strings.Join(calls, ", "))
}

// figures prints the latencies and counts of issue 9, for calls and
// changes no fault or restart touched.
func (res *soakResult) figures(t *testing.T, eps []episode, fail func(string, ...any)) {
	rec := res.rec
	rec.mu.Lock()
	writes := slices.Clone(rec.writes)
	presence := slices.Clone(rec.presence)
	changes := slices.Clone(rec.changes)
	reads := rec.reads
	rec.mu.Unlock()
	byUser := map[string][]graphWrite{}
	for _, gw := range writes {
		byUser[gw.user] = append(byUser[gw.user], gw)
	}
	keepAlive := 5 * time.Minute

	// Phone connected → setPresence on the wire; Graph writes per call.
	var lat []time.Duration
	missing, late := 0, 0
	exact, clean, single := 0, 0, 0
	var wrong []string
	for i, e := range eps {
		if !e.p.prof.SetTeamsPresence || e.to.Sub(e.from) < time.Second {
			continue
		}
		var sets, clears int
		var first time.Time
		for _, gw := range byUser[e.p.teamsID] {
			if gw.at.Before(e.from) || gw.at.After(e.to.Add(soakWriteWindow)) {
				continue
			}
			if gw.clear {
				clears++
			} else {
				sets++
				if first.IsZero() {
					first = gw.at
				}
			}
		}
		// The latency needs only its start untouched; the count the whole call.
		short := e.to.Sub(e.from) < soakShortCall
		if rec.clean(e.from, e.from.Add(time.Second)) {
			switch {
			case !first.IsZero() && !first.After(e.to):
				lat = append(lat, first.Sub(e.from))
			case short:
				late++ // over before the bridge's write could go: nothing stale was sent
			default:
				missing++
			}
		}
		next := false // another call of the person soon after shares the writes
		for _, f := range eps[i+1:] {
			if f.p == e.p && f.from.Before(e.to.Add(soakWriteWindow)) {
				next = true
			}
		}
		if next || e.connection != 1 || !e.plainOnly {
			continue
		}
		single++
		if !rec.clean(e.from, e.to.Add(soakWriteWindow)) {
			continue
		}
		clean++
		want := 1 + int(e.to.Sub(e.from)/keepAlive)
		switch {
		case clears == 1 && (sets == want || (sets == want+1 && e.to.Sub(e.from)%keepAlive > keepAlive-5*time.Second)):
			exact++
		case sets == 0 && clears == 0 && short:
			exact++ // the short call was over before the bridge wrote: none is the right count
		default:
			wrong = append(wrong, fmt.Sprintf("%s call %s..%s: %d sets, %d clears (want %d + 1)", e.p.contact, res.rel(e.from), res.rel(e.to), sets, clears, want))
		}
	}
	p50, p99, mx := percentiles(lat)
	t.Logf("soak: FIGURE phone connected → setPresence on the wire: p50 %s, p99 %s, max %s over %d untouched calls (%d calls under %s ended before any write, %d longer ones never reached Teams)",
		ms(p50), ms(p99), ms(mx), len(lat), late, soakShortCall, missing)
	t.Logf("soak: FIGURE Graph writes per untouched single call: %d of %d exactly 1 set + keep-alives + 1 clear (%d single calls of a second or more, %d of them untouched)", exact, clean, single, clean)
	if len(wrong) > 0 {
		fail("soak: %d untouched calls did not get exactly 1 set + keep-alives + 1 clear:\n  %s", len(wrong), strings.Join(wrong[:min(len(wrong), 20)], "\n  "))
	}
	if missing > 0 {
		fail("soak: %d untouched calls of %s or more never reached Teams while they lasted", missing, soakShortCall)
	}

	// Teams change → phone write on the wire.
	steps := rec.callSteps()
	var tlat []time.Duration
	none := 0
	prev := map[string]string{}
	for _, pc := range presence {
		p := res.w.byID[strings.ToLower(pc.UserID)]
		if p == nil {
			continue
		}
		was := prev[p.teamsID]
		now := teamsTrigger(pc, p.prof)
		prev[p.teamsID] = now
		if pc.Time.Before(res.w.start) || now == "" || was != "" {
			continue
		}
		if !holds(steps[p.contact], pc.Time.Add(-2*time.Second), pc.Time, func(s callStep) bool { return !s.inCall }) || !rec.clean(pc.Time, pc.Time.Add(2*time.Second)) {
			continue
		}
		var got time.Time
		for _, c := range changes {
			if c.By == soakBridgeContact && isWrite(c) && c.ContactID == p.contact && !c.Time.Before(pc.Time) {
				got = c.Time
				break
			}
		}
		if got.IsZero() || got.Sub(pc.Time) > 10*time.Second {
			none++
			continue
		}
		tlat = append(tlat, got.Sub(pc.Time))
	}
	p50, p99, mx = percentiles(tlat)
	t.Logf("soak: FIGURE Teams change → phone write on the wire: p50 %s, p99 %s, max %s over %d untouched changes (%d changes needed no write or got none within 10 s); Teams is polled (%d presence reads)",
		ms(p50), ms(p99), ms(mx), len(tlat), none, reads)

	// Restart → first write of the new process.
	var rlat []time.Duration
	for _, l := range res.lives[1:] {
		end := l.end
		if end.IsZero() {
			end = time.Now()
		}
		var first time.Time
		for _, gw := range writes {
			if !gw.at.Before(l.start) && gw.at.Before(end) {
				first = gw.at
				break
			}
		}
		for _, c := range changes {
			if c.By == soakBridgeContact && isWrite(c) && !c.Time.Before(l.start) && c.Time.Before(end) {
				if first.IsZero() || c.Time.Before(first) {
					first = c.Time
				}
				break
			}
		}
		if !first.IsZero() {
			rlat = append(rlat, first.Sub(l.start))
		}
	}
	p50, p99, mx = percentiles(rlat)
	t.Logf("soak: FIGURE restart → first write of the new process: p50 %s, p99 %s, max %s over %d restarts that wrote", ms(p50), ms(p99), ms(mx), len(rlat))
}

// teamsTrigger says which §1 row of a Teams presence changes the phone for
// a profile ("" for none).
func teamsTrigger(pc graphsim.PresenceChange, prof psync.Profile) string {
	act, avail := strings.ToLower(pc.Activity), strings.ToLower(pc.Availability)
	switch {
	case act == "presenting":
		if (prof.ApplyTeamsToPhone && prof.PresentingToPhoneDND) || prof.CrossDeviceBusyOnBusy {
			return "presenting"
		}
	case act == "inacall" || act == "inaconferencecall":
		if prof.ApplyTeamsToPhone || prof.CrossDeviceBusyOnBusy {
			return "call"
		}
	case avail == "donotdisturb":
		if prof.ApplyTeamsToPhone && prof.TeamsDNDToPhoneDND {
			return "dnd"
		}
	case act == "inameeting":
		if prof.CalendarMeetingsAsCalls && (prof.ApplyTeamsToPhone || prof.CrossDeviceBusyOnBusy) {
			return "meeting"
		}
	}
	return ""
}

// dumpLogs writes the simulators' logs next to the database, one line per
// entry with times relative to the start, for a look after a failed run.
func (res *soakResult) dumpLogs() error {
	rec := res.rec
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var b strings.Builder
	for _, c := range rec.changes {
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t", res.rel(c.Time), c.Kind, c.ContactID, c.LineURI)
		switch c.Kind {
		case ucsim.ChangeCall:
			fmt.Fprintf(&b, "%s state=%d conferenced=%v", c.ConnectionID, c.CallState, c.Conferenced)
		case ucsim.ChangeLineDND, ucsim.ReadLine:
			b.WriteString(onOffText(c.DND))
		default:
			b.WriteString(absentText(c.Absent))
		}
		who := c.By
		if who == ucsim.ByPerson {
			who = "person"
		}
		fmt.Fprintf(&b, "\t%s\t[%s]\n", who, res.lifeAt(c.Time))
	}
	if err := os.WriteFile(filepath.Join(res.w.dir, "ucsim-changes.tsv"), []byte(b.String()), 0o600); err != nil {
		return err
	}
	b.Reset()
	for _, gw := range rec.writes {
		op := "set " + gw.activity
		if gw.clear {
			op = "clear"
		}
		p := res.w.byID[gw.user]
		contact := gw.user
		if p != nil {
			contact = p.contact
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%d\t[%s]\n", res.rel(gw.at), contact, op, gw.status, res.lifeAt(gw.at))
	}
	for _, pc := range rec.presence {
		contact := pc.UserID
		if p := res.w.byID[strings.ToLower(pc.UserID)]; p != nil {
			contact = p.contact
		}
		fmt.Fprintf(&b, "%s\t%s\tpresence %s/%s\t-\t[%s]\n", res.rel(pc.Time), contact, pc.Availability, pc.Activity, res.lifeAt(pc.Time))
	}
	return os.WriteFile(filepath.Join(res.w.dir, "graphsim-log.tsv"), []byte(b.String()), 0o600)
}

// presenceName is the engine's name of the presence an absent state shows.
func presenceName(state int) string {
	switch state {
	case ucsim.AbsentOutOfOffice:
		return psync.PhoneAway.String()
	case ucsim.AbsentBusy:
		return psync.PhoneBusy.String()
	case ucsim.AbsentDoNotDisturb:
		return psync.PhoneDND.String()
	case ucsim.AbsentNotSet:
		return psync.PhoneNotSet.String()
	}
	return psync.PhoneAvailable.String()
}
