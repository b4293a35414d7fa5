package ucserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	psync "github.com/presencebridge/presencebridge/sync"
)

// ContactIDForEmail returns the contact id a UCServer most likely gives the
// person with this e-mail address (a candidate for Directory).
//
// Guess (brief §3.2 only shows "sip:user@domain" ids): ProCall contact ids
// are "sip:" plus the SIP address, and the SIP address equals the e-mail /
// UPN in the usual Microsoft 365 setup.
func ContactIDForEmail(email string) string {
	return "sip:" + strings.ToLower(strings.TrimSpace(email))
}

// Directory looks contacts up on the UCServer as the service account sees
// them, for matching people to Entra users by e-mail: one psync.User per
// contact id the server knows (ID = contact id, DisplayName, UPN = e-mail,
// Extension), in the order asked, unknown ids left out. With no ids it
// returns the service account itself, which checks the credentials.
//
// The public client interface has no contact search, so the candidates
// must come from the caller (e.g. ContactIDForEmail of every Entra UPN).
// Directory uses a short session of its own and needs no Run.
func (c *Conn) Directory(ctx context.Context, contactIDs ...string) ([]psync.User, error) {
	c.runMu.Lock()
	closed := c.closed
	c.runMu.Unlock()
	if closed {
		return nil, fmt.Errorf("directory: %w: connection closed", psync.ErrUnavailable)
	}
	s, err := c.dial(ctx, nil)
	if err != nil {
		var le *loginError
		if errors.As(err, &le) {
			c.problem("login refused: "+err.Error(), le.fix())
			return nil, fmt.Errorf("directory: %w: %w", psync.ErrRejected, err)
		}
		return nil, fmt.Errorf("directory: %w: %w", psync.ErrUnavailable, err)
	}
	defer s.close()

	if len(contactIDs) == 0 {
		var own psync.User
		err := s.invoke(ctx, opGetLoggedInContactV2, struct{}{}, func(raw json.RawMessage) error {
			var r wLoggedInContact
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			if r.OwnContact == nil || r.OwnContact.ContactID == "" {
				return errors.New("no ownContact.u8sContactId")
			}
			oc := r.OwnContact
			p := wPresence{ContactID: oc.ContactID, RemoteContact: oc.RemoteContact}
			own = directoryUser(p)
			if own.Extension == "" && len(oc.PhoneLines) > 0 {
				own.Extension = oc.PhoneLines[0].Number
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		return []psync.User{own}, nil
	}

	var ids []string
	seen := map[string]bool{}
	for _, id := range contactIDs {
		k := foldID(id)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		ids = append(ids, strings.TrimSpace(id))
	}
	found := map[string]psync.User{}
	for i := 0; i < len(ids); i += subscribeChunk {
		arg := subscribeArg{
			ContactIDs: ids[i:min(i+subscribeChunk, len(ids))],
			// Guess (brief §3.2): flags 0 subscribes to no events at all
			// (omitting the member would mean "everything"); the session
			// ends right after anyway.
			EventFlagsToSubscribe:  0,
			ContactDetailsFilter:   subData | subPhoneLines,
			DontRequestPermissions: true,
		}
		err := s.invoke(ctx, opGetAndSubscribePresenceV2, arg, func(raw json.RawMessage) error {
			var r wSubscribeResult
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			for _, p := range r.Presences {
				if p.ContactID != "" {
					found[foldID(p.ContactID)] = directoryUser(p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
	}
	out := make([]psync.User, 0, len(found))
	for _, id := range ids {
		if u, ok := found[foldID(id)]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// directoryUser is a contact as the bridge shows it. Its texts come from the
// server and reach the console and the store: without control characters,
// and of a sane length.
func directoryUser(p wPresence) psync.User {
	text := func(s string) string { return clip(printable(strings.TrimSpace(s)), maxNameText) }
	u := psync.User{ID: psync.UserID(p.ContactID)}
	if rc := p.RemoteContact; rc != nil {
		u.DisplayName = text(rc.DisplayName)
		if u.DisplayName == "" {
			u.DisplayName = text(rc.FirstName + " " + rc.LastName)
		}
		if strings.Contains(rc.EMail, "@") {
			u.UPN = text(rc.EMail)
		}
		u.Extension = text(rc.PhoneBusiness)
	}
	if u.Extension == "" && p.PhoneLines != nil {
		for _, l := range *p.PhoneLines {
			if l.Number != "" {
				u.Extension = text(l.Number)
				break
			}
		}
	}
	return u
}
