package teams

import (
	"context"
	"fmt"
	"time"

	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/communications"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The combinations setPresence accepts (graph-presence.md §2); the bridge
// only ever sends the two Busy ones.
var acceptedSet = map[[2]string]bool{
	{"Available", "Available"}: true, {"Busy", "InACall"}: true, {"Busy", "InAConferenceCall"}: true,
	{"Away", "Away"}: true, {"DoNotDisturb", "Presenting"}: true,
}

// SetPresence sets or keeps alive the bridge's session: Busy with the
// activity, sessionId = the app's client id, expiring after lease.
func (c *Client) SetPresence(ctx context.Context, u psync.User, activity string, lease time.Duration) error {
	if !acceptedSet[[2]string{"Busy", activity}] {
		return fmt.Errorf("%w: setPresence Busy/%s is not a combination Graph accepts", psync.ErrRejected, activity)
	}
	lease = min(max(lease, minLease), maxLease)
	id := c.idOf(u)
	if id == "" {
		return fmt.Errorf("%w: user %s has no Entra id or UPN", psync.ErrRejected, u.ID)
	}
	body := users.NewItemPresenceSetPresencePostRequestBody()
	body.SetSessionId(ptr(c.cfg.ClientID))
	body.SetAvailability(ptr("Busy"))
	body.SetActivity(ptr(activity))
	body.SetExpirationDuration(absser.FromDuration(lease))
	return c.call("setPresence", func() error {
		return c.graph.Users().ByUserId(id).Presence().SetPresence().Post(ctx, body, nil)
	})
}

// ClearPresence ends the bridge's session (404: already gone, success) and
// reads the presence Teams shows without it.
func (c *Client) ClearPresence(ctx context.Context, u psync.User) (psync.TeamsPresence, error) {
	id := c.idOf(u)
	if id == "" {
		return psync.TeamsPresence{}, fmt.Errorf("%w: user %s has no Entra id or UPN", psync.ErrRejected, u.ID)
	}
	body := users.NewItemPresenceClearPresencePostRequestBody()
	body.SetSessionId(ptr(c.cfg.ClientID))
	err := c.call("clearPresence", func() error {
		return c.graph.Users().ByUserId(id).Presence().ClearPresence().Post(ctx, body, nil)
	})
	if err != nil && statusOf(err) != 404 {
		return psync.TeamsPresence{}, err
	}
	var p models.Presenceable
	if err := c.call("getPresence", func() error {
		var err error
		p, err = c.graph.Users().ByUserId(id).Presence().Get(ctx, nil)
		return err
	}); err != nil {
		// The clear succeeded; the read is a courtesy to the engine.
		c.log.Info("presence after clear not read", "user", u.ID, "err", err)
		return psync.TeamsPresence{}, nil
	}
	tp := c.toPresence(p)
	c.mu.Lock()
	if prev, ok := c.last[u.ID]; !ok || tp.Newer(prev) || tp.Sequence == "" {
		c.last[u.ID] = tp
	}
	c.mu.Unlock()
	return tp, nil
}

func (c *Client) toPresence(p models.Presenceable) psync.TeamsPresence {
	tp := psync.TeamsPresence{
		Availability: deref(p.GetAvailability()), Activity: deref(p.GetActivity()),
		Sequence: deref(p.GetSequenceNumber()), Observed: c.cfg.Now(),
	}
	if o := p.GetOutOfOfficeSettings(); o != nil && o.GetIsOutOfOffice() != nil {
		tp.OutOfOffice = *o.GetIsOutOfOffice()
	}
	return tp
}

// readPresences reads one chunk of at most 650 object ids.
func (c *Client) readPresences(ctx context.Context, ids []string) ([]models.Presenceable, error) {
	body := communications.NewGetPresencesByUserIdPostRequestBody()
	body.SetIds(ids)
	var out []models.Presenceable
	err := c.call("getPresencesByUserId", func() error {
		resp, err := c.graph.Communications().GetPresencesByUserId().PostAsGetPresencesByUserIdPostResponse(ctx, body, nil)
		if err == nil {
			out = resp.GetValue()
		}
		return err
	})
	return out, err
}

// accept compares a read presence with the last one of the user: it
// returns the event to send, or false for no change or an out-of-order read.
func (c *Client) accept(objectID string, p models.Presenceable) (psync.TeamsEvent, bool) {
	return c.acceptPresence(objectID, c.toPresence(p))
}

func (c *Client) acceptPresence(objectID string, tp psync.TeamsPresence) (psync.TeamsEvent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	uid, ok := c.userOf[lower(objectID)]
	if !ok {
		return psync.TeamsEvent{}, false
	}
	prev, seen := c.last[uid]
	if seen {
		if prev.Sequence != "" && tp.Sequence != "" && !tp.Newer(prev) {
			return psync.TeamsEvent{}, false // older or the same version
		}
		if prev.Availability == tp.Availability && prev.Activity == tp.Activity && prev.OutOfOffice == tp.OutOfOffice {
			if tp.Sequence != "" {
				c.last[uid] = tp
			}
			return psync.TeamsEvent{}, false // a new version of the same state
		}
	}
	if tp.Sequence == "" && seen {
		// A rich notification carries no sequenceNumber and no
		// out-of-office flag: keep the last ones.
		tp.OutOfOffice = prev.OutOfOffice
		tp.Sequence = prev.Sequence
	}
	c.last[uid] = tp
	return psync.TeamsEvent{Kind: psync.TeamsPresenceChanged, User: uid, Presence: tp}, true
}
