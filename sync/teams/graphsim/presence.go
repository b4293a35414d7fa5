package graphsim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Presence model. A user's presence is aggregated from presence sessions: the user's own Teams
// clients (scripted by tests) and one session per application that called setPresence, plus
// an optional user-preferred presence. The aggregation follows Microsoft's documented
// precedence (shared/docs/graph-presence.md §2):
//
//	user-preferred > DoNotDisturb > Busy > Available > Away
//
// BeRightBack, which Microsoft does not rank, sits between Available and Away. Ties on
// availability go to the "active" activity (AvailableInactive loses), then to the session
// updated last. With no session at all the user is Offline/Offline, and a user-preferred
// presence has no effect (Microsoft: it applies only while at least one session exists).

const (
	// fadeStep is Graph's timeout of an Available application session that is not refreshed:
	// Available/Available → Available/AvailableInactive after 5 minutes, → Away/Away after 10.
	fadeStep = 5 * time.Minute
	// teamsClientSession is the session id of the user's scripted Teams desktop client.
	teamsClientSession = "teams-desktop-client"

	minSessionExpiry     = 5 * time.Minute
	maxSessionExpiry     = 4 * time.Hour
	defaultSessionExpiry = 5 * time.Minute
)

var availabilities = canonicalSet("Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle", "DoNotDisturb", "Offline", "PresenceUnknown")

var activities = canonicalSet("Available", "Away", "BeRightBack", "Busy", "DoNotDisturb", "InACall", "InAConferenceCall", "Inactive", "InAMeeting", "Offline", "OffWork", "OutOfOffice", "PresenceUnknown", "Presenting", "UrgentInterruptionsOnly", "AvailableInactive")

func canonicalSet(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}

// setPresenceCombos are the five availability/activity pairs setPresence accepts.
var setPresenceCombos = map[[2]string]bool{
	{"Available", "Available"}:     true,
	{"Busy", "InACall"}:            true,
	{"Busy", "InAConferenceCall"}:  true,
	{"Away", "Away"}:               true,
	{"DoNotDisturb", "Presenting"}: true,
}

// preferredCombos are the pairs setUserPreferredPresence accepts.
var preferredCombos = map[[2]string]bool{
	{"Available", "Available"}:       true,
	{"Busy", "Busy"}:                 true,
	{"DoNotDisturb", "DoNotDisturb"}: true,
	{"BeRightBack", "BeRightBack"}:   true,
	{"Away", "Away"}:                 true,
	{"Offline", "OffWork"}:           true,
}

var availabilityRank = map[string]int{
	"DoNotDisturb": 6, "Busy": 5, "BusyIdle": 5, "Available": 4, "AvailableIdle": 4,
	"BeRightBack": 3, "Away": 2, "Offline": 1,
}

type session struct {
	id           string
	appID        string // empty for the user's own (scripted) clients
	availability string
	activity     string
	setAt        time.Time
	expiresAt    time.Time // zero: never (a signed-in Teams client)
	fades        bool      // application sessions time out when Available
	touch        uint64    // update order, for ties
}

// at returns the session's state at t; alive is false once it expired.
func (ss *session) at(t time.Time) (availability, activity string, alive bool) {
	if !ss.expiresAt.IsZero() && !t.Before(ss.expiresAt) {
		return "", "", false
	}
	if ss.fades && ss.availability == "Available" {
		switch {
		case !t.Before(ss.setAt.Add(2 * fadeStep)):
			return "Away", "Away", true
		case !t.Before(ss.setAt.Add(fadeStep)):
			return "Available", "AvailableInactive", true
		}
	}
	return ss.availability, ss.activity, true
}

type preferredPresence struct {
	availability, activity string
	expiresAt              time.Time
}

type statusMessage struct {
	content   string
	expiresAt time.Time // zero: never
	published time.Time
}

// teamsClient is the scripted state of the user's Teams desktop client.
type teamsClient struct {
	signedIn   bool
	call       string // "", "call", "conference", "meeting"
	presenting bool
	idle       bool
}

// presenceValue is what subscribers see; any change of it is a presence change with a new
// sequence number and notifications.
type presenceValue struct {
	availability, activity string
	oof                    bool
	oofMessage             string
	status                 string
}

type userState struct {
	user       User
	sessions   map[string]*session
	preferred  *preferredPresence
	client     teamsClient
	oof        bool
	oofMessage string
	status     *statusMessage
	cur        presenceValue
	seq        string
}

func newUserState(u User) *userState {
	return &userState{user: u, sessions: map[string]*session{}, cur: presenceValue{availability: "Offline", activity: "Offline"}}
}

// sessionView is one session's state at a moment, input of aggregate.
type sessionView struct {
	availability, activity string
	touch                  uint64
}

// aggregate applies Microsoft's precedence to the live sessions and the user-preferred state.
func aggregate(views []sessionView, preferred *[2]string) (availability, activity string) {
	if len(views) == 0 {
		return "Offline", "Offline"
	}
	if preferred != nil {
		return preferred[0], preferred[1]
	}
	best := views[0]
	for _, v := range views[1:] {
		if better(v, best) {
			best = v
		}
	}
	return best.availability, best.activity
}

func better(a, b sessionView) bool {
	ra, rb := availabilityRank[a.availability], availabilityRank[b.availability]
	if ra != rb {
		return ra > rb
	}
	ia, ib := a.activity == "AvailableInactive", b.activity == "AvailableInactive"
	if ia != ib {
		return !ia
	}
	return a.touch > b.touch
}

func (s *Server) nextSeqLocked() string {
	s.seq++
	return fmt.Sprintf("%016X", s.seq)
}

func (s *Server) nextTouchLocked() uint64 {
	s.touches++
	return s.touches
}

// computeLocked is the user's presence at t.
func (s *Server) computeLocked(us *userState, t time.Time) presenceValue {
	views := make([]sessionView, 0, len(us.sessions))
	for _, ss := range us.sessions {
		if a, act, alive := ss.at(t); alive {
			views = append(views, sessionView{a, act, ss.touch})
		}
	}
	var pref *[2]string
	if p := us.preferred; p != nil && (p.expiresAt.IsZero() || t.Before(p.expiresAt)) {
		pref = &[2]string{p.availability, p.activity}
	}
	v := presenceValue{oof: us.oof, oofMessage: us.oofMessage}
	v.availability, v.activity = aggregate(views, pref)
	if us.oof && (v.activity == "Available" || v.activity == "Offline") {
		// Teams shows "Out of office" in place of a plain Available or Offline.
		v.activity = "OutOfOffice"
	}
	if st := us.status; st != nil && (st.expiresAt.IsZero() || t.Before(st.expiresAt)) {
		v.status = st.content
	}
	return v
}

// refreshUserLocked drops what expired by t and publishes the user's presence if it changed.
func (s *Server) refreshUserLocked(us *userState, t time.Time) {
	for id, ss := range us.sessions {
		if _, _, alive := ss.at(t); !alive {
			delete(us.sessions, id)
		}
	}
	if p := us.preferred; p != nil && !p.expiresAt.IsZero() && !t.Before(p.expiresAt) {
		us.preferred = nil
	}
	if st := us.status; st != nil && !st.expiresAt.IsZero() && !t.Before(st.expiresAt) {
		us.status = nil
	}
	v := s.computeLocked(us, t)
	if v == us.cur && us.seq != "" {
		return
	}
	us.cur = v
	us.seq = s.nextSeqLocked()
	if s.opts.PresenceLog {
		s.presenceLog = append(s.presenceLog, PresenceChange{Time: t, UserID: us.user.ID, Availability: v.availability, Activity: v.activity, SequenceNumber: us.seq})
	}
	s.log.Debug("presence", "user", us.user.ID, "availability", v.availability, "activity", v.activity, "seq", us.seq)
	s.notifyPresenceLocked(us, t)
}

// advanceLocked applies, in time order, every timer that falls in (evaluatedAt, now]: session
// fades and expiry, preferred-presence and status-message expiry, subscription expiry. Each
// step publishes the presence changes it causes, so a clock jump of an hour still yields the
// Available → AvailableInactive → Away → Offline notifications Graph would have sent.
// The clock is assumed not to run backwards; if it does, nothing is replayed.
func (s *Server) advanceLocked(now time.Time) {
	for {
		t, ok := s.nextDueLocked(now)
		if !ok {
			break
		}
		s.evaluatedAt = t
		s.expireSubscriptionsLocked(t)
		for _, id := range s.userOrder {
			us := s.users[id]
			due := false
			us.timers(func(x time.Time) { due = due || x.Equal(t) })
			if due {
				s.refreshUserLocked(us, t)
			}
		}
	}
	if now.After(s.evaluatedAt) {
		s.evaluatedAt = now
	}
}

func (s *Server) nextDueLocked(now time.Time) (time.Time, bool) {
	var best time.Time
	consider := func(t time.Time) {
		if t.IsZero() || !t.After(s.evaluatedAt) || t.After(now) {
			return
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	for _, us := range s.users {
		us.timers(consider)
	}
	for _, sub := range s.subs {
		consider(sub.expiresAt)
	}
	return best, !best.IsZero()
}

// timers calls f with every moment at which the user's presence may change by itself
// (zero times included; callers skip them).
func (us *userState) timers(f func(time.Time)) {
	for _, ss := range us.sessions {
		f(ss.expiresAt)
		if ss.fades && ss.availability == "Available" {
			f(ss.setAt.Add(fadeStep))
			f(ss.setAt.Add(2 * fadeStep))
		}
	}
	if us.preferred != nil {
		f(us.preferred.expiresAt)
	}
	if us.status != nil {
		f(us.status.expiresAt)
	}
}

// presenceJSON is the presence resource as Graph returns it.
func (s *Server) presenceJSON(us *userState) map[string]any {
	v := us.cur
	var oofMsg any
	if v.oofMessage != "" {
		oofMsg = v.oofMessage
	}
	var status any
	if v.status != "" {
		status = map[string]any{"message": map[string]any{"content": v.status, "contentType": "text"}}
	}
	return map[string]any{
		"id":                  us.user.ID,
		"availability":        v.availability,
		"activity":            v.activity,
		"statusMessage":       status,
		"outOfOfficeSettings": map[string]any{"message": oofMsg, "isOutOfOffice": v.oof},
		"sequenceNumber":      us.seq,
	}
}

func unknownPresenceJSON(id string) map[string]any {
	return map[string]any{
		"id": id, "availability": "PresenceUnknown", "activity": "PresenceUnknown",
		"statusMessage": nil, "outOfOfficeSettings": map[string]any{"message": nil, "isOutOfOffice": false},
	}
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseISODuration parses the day-time subset of ISO 8601 durations that Graph uses
// (e.g. PT5M, PT1H30M, P1D, P0DT4H0M0S).
func parseISODuration(s string) (time.Duration, bool) {
	m := isoDuration.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || s == "P" || strings.HasSuffix(strings.ToUpper(s), "T") {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
		if m[i+1] != "" {
			n, err := strconv.ParseInt(m[i+1], 10, 64)
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	if m[4] != "" {
		f, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(f * float64(time.Second))
	}
	return d, true
}

// clientSessionState is what the Teams client shows for its scripted state.
func (c teamsClient) state() (availability, activity string) {
	switch {
	case c.presenting:
		return "DoNotDisturb", "Presenting"
	case c.call == "call":
		return "Busy", "InACall"
	case c.call == "conference":
		return "Busy", "InAConferenceCall"
	case c.call == "meeting":
		return "Busy", "InAMeeting"
	case c.idle:
		return "Away", "Away"
	}
	return "Available", "Available"
}

// syncClientSessionLocked makes the Teams client session match the scripted client.
func (s *Server) syncClientSessionLocked(us *userState, now time.Time) {
	if !us.client.signedIn {
		delete(us.sessions, teamsClientSession)
		return
	}
	a, act := us.client.state()
	ss := us.sessions[teamsClientSession]
	if ss == nil {
		ss = &session{id: teamsClientSession}
		us.sessions[teamsClientSession] = ss
	}
	if ss.availability != a || ss.activity != act {
		ss.availability, ss.activity = a, act
		ss.touch = s.nextTouchLocked()
	}
	ss.setAt = now
}
