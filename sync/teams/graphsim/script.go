package graphsim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The scripting API: what people and admins do, for tests. Each call applies the clock first
// (like a request does), changes the world, and publishes the resulting presence change with
// notifications. Users are named by object id or UPN.

// Presence is a user's aggregated presence as Graph reports it.
type Presence struct {
	ID                 string
	Availability       string
	Activity           string
	SequenceNumber     string
	OutOfOffice        bool
	OutOfOfficeMessage string
	StatusMessage      string
}

// PresenceChange is one change of a user's aggregated presence (Options.PresenceLog), with the
// simulated time it happened at.
type PresenceChange struct {
	Time           time.Time
	UserID         string
	Availability   string
	Activity       string
	SequenceNumber string
}

// TakePresenceChanges returns the presence change log, oldest first, and empties it.
func (s *Server) TakePresenceChanges() []PresenceChange {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.presenceLog
	s.presenceLog = nil
	return out
}

// Session is one presence session of a user, with its state at the time of the call.
type Session struct {
	ID string
	// AppID is the application that owns the session; empty for the user's Teams clients.
	AppID        string
	Availability string
	Activity     string
	// SetAt is the last setPresence (the timeout counts from it) or client change.
	SetAt time.Time
	// ExpiresAt is zero for a signed-in Teams client.
	ExpiresAt time.Time
}

// ErrUnknownUser is wrapped by scripting calls that name no user of the tenant.
var ErrUnknownUser = errors.New("graphsim: unknown user")

func unknownUser(user string) error { return fmt.Errorf("%w %q", ErrUnknownUser, user) }

// withUser runs f on the user under the lock at the current time, then publishes the change.
func (s *Server) withUser(user string, f func(us *userState, now time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.advanceLocked(now)
	id, ok := s.resolveUserLocked(user)
	if !ok {
		return unknownUser(user)
	}
	us := s.users[id]
	if err := f(us, now); err != nil {
		return err
	}
	s.syncClientSessionLocked(us, now)
	s.refreshUserLocked(us, now)
	return nil
}

func (s *Server) client(user string, f func(c *teamsClient)) error {
	return s.withUser(user, func(us *userState, _ time.Time) error {
		us.client.signedIn = true
		f(&us.client)
		return nil
	})
}

// SignIn signs the user's Teams desktop client in: a session showing Available/Available.
func (s *Server) SignIn(user string) error { return s.client(user, func(*teamsClient) {}) }

// SignOut closes the user's Teams desktop client; its session ends.
func (s *Server) SignOut(user string) error {
	return s.withUser(user, func(us *userState, _ time.Time) error {
		us.client = teamsClient{}
		return nil
	})
}

// StartTeamsCall: the user is in a Teams call (Busy/InACall). Signs the client in.
func (s *Server) StartTeamsCall(user string) error {
	return s.client(user, func(c *teamsClient) { c.call = "call" })
}

// JoinMeeting: the user joined a Teams meeting (Busy/InAConferenceCall).
func (s *Server) JoinMeeting(user string) error {
	return s.client(user, func(c *teamsClient) { c.call = "conference" })
}

// StartCalendarMeeting: a scheduled calendar meeting is running (Busy/InAMeeting), which
// Teams derives from the calendar, not from a call.
func (s *Server) StartCalendarMeeting(user string) error {
	return s.client(user, func(c *teamsClient) { c.call = "meeting" })
}

// EndCall ends the user's Teams call, meeting or calendar meeting, and any presenting.
func (s *Server) EndCall(user string) error {
	return s.client(user, func(c *teamsClient) { c.call, c.presenting = "", false })
}

// StartPresenting: the user shares the screen (DoNotDisturb/Presenting).
func (s *Server) StartPresenting(user string) error {
	return s.client(user, func(c *teamsClient) { c.presenting = true })
}

// StopPresenting: screen sharing ends; the call state (if any) shows again.
func (s *Server) StopPresenting(user string) error {
	return s.client(user, func(c *teamsClient) { c.presenting = false })
}

// SetIdle marks the Teams client inactive (Away/Away) or active again.
func (s *Server) SetIdle(user string, idle bool) error {
	return s.client(user, func(c *teamsClient) { c.idle = idle })
}

// SetUserPreferred sets a user-preferred presence as setUserPreferredPresence does (same
// combinations; d == 0 means Microsoft's default: 1 day for Busy and DoNotDisturb, else 7
// days). It does not sign any client in: without a session it has no visible effect.
func (s *Server) SetUserPreferred(user, availability, activity string, d time.Duration) error {
	a, aok := availabilities[strings.ToLower(availability)]
	c, cok := activities[strings.ToLower(activity)]
	if !aok || !cok || !preferredCombos[[2]string{a, c}] {
		return fmt.Errorf("graphsim: %s/%s is not a user-preferred presence", availability, activity)
	}
	if d == 0 {
		d = preferredDefault(a)
	}
	return s.withUser(user, func(us *userState, now time.Time) error {
		us.preferred = &preferredPresence{availability: a, activity: c, expiresAt: now.Add(d)}
		return nil
	})
}

// pickStatus is the person choosing a status in the Teams status menu: the client is signed
// in and the status is a user-preferred presence with Teams' default duration.
func (s *Server) pickStatus(user, availability, activity string) error {
	if err := s.SignIn(user); err != nil {
		return err
	}
	return s.SetUserPreferred(user, availability, activity, 0)
}

// SetDND: the user picks "Do not disturb" in Teams.
func (s *Server) SetDND(user string) error { return s.pickStatus(user, "DoNotDisturb", "DoNotDisturb") }

// SetBusy: the user picks "Busy" in Teams.
func (s *Server) SetBusy(user string) error { return s.pickStatus(user, "Busy", "Busy") }

// SetAway: the user picks "Appear away" in Teams.
func (s *Server) SetAway(user string) error { return s.pickStatus(user, "Away", "Away") }

// SetBeRightBack: the user picks "Be right back" in Teams.
func (s *Server) SetBeRightBack(user string) error {
	return s.pickStatus(user, "BeRightBack", "BeRightBack")
}

// SetAppearOffline: the user picks "Appear offline" in Teams (Offline/OffWork).
func (s *Server) SetAppearOffline(user string) error { return s.pickStatus(user, "Offline", "OffWork") }

// SetAvailable: the user picks "Available" in Teams.
func (s *Server) SetAvailable(user string) error {
	return s.pickStatus(user, "Available", "Available")
}

// ResetStatus: the user picks "Reset status" (the user-preferred presence is cleared).
func (s *Server) ResetStatus(user string) error {
	return s.withUser(user, func(us *userState, _ time.Time) error {
		us.preferred = nil
		return nil
	})
}

// SetOutOfOffice turns the user's automatic replies (or an OOF calendar event) on or off.
func (s *Server) SetOutOfOffice(user string, on bool, message string) error {
	return s.withUser(user, func(us *userState, _ time.Time) error {
		us.oof, us.oofMessage = on, message
		if !on {
			us.oofMessage = ""
		}
		return nil
	})
}

// SetStatusMessage sets the user's status note; zero expires means it never expires, an
// empty message clears it.
func (s *Server) SetStatusMessage(user, message string, expires time.Time) error {
	return s.withUser(user, func(us *userState, now time.Time) error {
		if message == "" {
			us.status = nil
			return nil
		}
		us.status = &statusMessage{content: message, expiresAt: expires, published: now}
		return nil
	})
}

// SetClientSession sets an extra Teams client session of the user (e.g. "mobile") to any
// availability/activity; it never times out or expires until RemoveSession.
func (s *Server) SetClientSession(user, sessionID, availability, activity string) error {
	a, aok := availabilities[strings.ToLower(availability)]
	c, cok := activities[strings.ToLower(activity)]
	if !aok || !cok {
		return fmt.Errorf("graphsim: unknown presence %s/%s", availability, activity)
	}
	if sessionID == "" || sessionID == teamsClientSession {
		return fmt.Errorf("graphsim: session id %q is reserved", sessionID)
	}
	return s.withUser(user, func(us *userState, now time.Time) error {
		ss := us.sessions[sessionID]
		if ss == nil {
			ss = &session{id: sessionID}
			us.sessions[sessionID] = ss
		}
		ss.availability, ss.activity, ss.setAt = a, c, now
		ss.touch = s.nextTouchLocked()
		return nil
	})
}

// RemoveSession ends any session of the user, including an application's (as if it expired).
func (s *Server) RemoveSession(user, sessionID string) error {
	return s.withUser(user, func(us *userState, _ time.Time) error {
		if sessionID == teamsClientSession {
			us.client = teamsClient{}
		}
		key := sessionID
		if _, ok := us.sessions[key]; !ok {
			key = strings.ToLower(sessionID)
		}
		if _, ok := us.sessions[key]; !ok {
			return fmt.Errorf("graphsim: user %s has no session %q", user, sessionID)
		}
		delete(us.sessions, key)
		return nil
	})
}

// Presence returns the user's presence now.
func (s *Server) Presence(user string) (Presence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clock.Now())
	id, ok := s.resolveUserLocked(user)
	if !ok {
		return Presence{}, unknownUser(user)
	}
	us := s.users[id]
	v := us.cur
	return Presence{ID: id, Availability: v.availability, Activity: v.activity, SequenceNumber: us.seq,
		OutOfOffice: v.oof, OutOfOfficeMessage: v.oofMessage, StatusMessage: v.status}, nil
}

// Sessions returns the user's live sessions, ordered by id.
func (s *Server) Sessions(user string) ([]Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.advanceLocked(now)
	id, ok := s.resolveUserLocked(user)
	if !ok {
		return nil, unknownUser(user)
	}
	var out []Session
	for _, ss := range s.users[id].sessions {
		a, c, alive := ss.at(now)
		if !alive {
			continue
		}
		out = append(out, Session{ID: ss.id, AppID: ss.appID, Availability: a, Activity: c, SetAt: ss.setAt, ExpiresAt: ss.expiresAt})
	}
	slices.SortFunc(out, func(a, b Session) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeviceCode is a pending device authorization, as the person would see it.
type DeviceCode struct {
	UserCode  string
	ClientID  string
	Scopes    []string
	ExpiresAt time.Time
}

// PendingDeviceCodes lists device authorizations waiting for the person.
func (s *Server) PendingDeviceCodes() []DeviceCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []DeviceCode
	for _, da := range s.deviceCodes {
		if da.state == "pending" {
			out = append(out, DeviceCode{UserCode: da.userCode, ClientID: da.clientID, Scopes: append([]string(nil), da.scopes...), ExpiresAt: da.expiresAt})
		}
	}
	slices.SortFunc(out, func(a, b DeviceCode) int { return a.ExpiresAt.Compare(b.ExpiresAt) })
	return out
}

// ApproveDeviceCode is the person entering userCode at the verification page and signing in
// as user; the client's next poll gets tokens.
func (s *Server) ApproveDeviceCode(userCode, user string) error {
	return s.decideDeviceCode(userCode, user, "approved")
}

// DenyDeviceCode is the person declining the sign-in; the next poll gets
// authorization_declined.
func (s *Server) DenyDeviceCode(userCode string) error {
	return s.decideDeviceCode(userCode, "", "denied")
}

func (s *Server) decideDeviceCode(userCode, user, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	da := s.deviceCodes[s.userCodes[strings.ToUpper(strings.TrimSpace(userCode))]]
	if da == nil || da.state != "pending" {
		return fmt.Errorf("graphsim: no pending device code %q", userCode)
	}
	if !s.clock.Now().Before(da.expiresAt) {
		return fmt.Errorf("graphsim: device code %q expired", userCode)
	}
	if state == "approved" {
		id, ok := s.resolveUserLocked(user)
		if !ok {
			return unknownUser(user)
		}
		da.userID = id
	}
	da.state = state
	return nil
}

// RevokeRefreshTokens revokes all refresh tokens of the user (a password reset, or an admin's
// "revoke sessions"): refreshing fails with invalid_grant AADSTS50173.
func (s *Server) RevokeRefreshTokens(user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.resolveUserLocked(user)
	if !ok {
		return unknownUser(user)
	}
	for _, rt := range s.refreshTokens {
		if rt.userID == id {
			rt.revoked = true
		}
	}
	return nil
}

// Subscriptions returns the live subscriptions, ordered by id.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clock.Now())
	out := make([]Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		out = append(out, sub.snapshot())
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// RequireReauthorization sends a reauthorizationRequired lifecycle notification for the
// subscription to its lifecycleNotificationUrl, as Graph does before the access token behind
// it expires. Notifications keep flowing until the subscription expires; a PATCH renewal or
// POST .../reauthorize clears the pending state.
func (s *Server) RequireReauthorization(subscriptionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(s.clock.Now())
	sub := s.subs[strings.ToLower(subscriptionID)]
	if sub == nil {
		return fmt.Errorf("graphsim: no subscription %q", subscriptionID)
	}
	if sub.lifecycleURL == "" {
		return fmt.Errorf("graphsim: subscription %s has no lifecycleNotificationUrl", sub.id)
	}
	sub.reauthPending = true
	s.dq.push(notificationItem{url: sub.lifecycleURL, kind: "lifecycle", subID: sub.id, payload: map[string]any{
		"subscriptionId":                 sub.id,
		"subscriptionExpirationDateTime": sub.expiresAt.UTC().Format(graphTimeLayout),
		"tenantId":                       s.tenantID,
		"clientState":                    nullable(sub.clientState),
		"lifecycleEvent":                 "reauthorizationRequired",
		"organizationId":                 s.tenantID,
	}})
	return nil
}
