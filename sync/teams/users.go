package teams

import (
	"context"
	"fmt"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	psync "github.com/presencebridge/presencebridge/sync"
)

// UserProblem is a mapped user the bridge cannot follow in Teams.
type UserProblem struct {
	User   psync.UserID
	UPN    string
	Reason string // "unknown in Entra", "account disabled", "no UPN"
}

func (p UserProblem) String() string {
	return fmt.Sprintf("user %s (%s): %s", p.User, p.UPN, p.Reason)
}

var userSelect = []string{"id", "displayName", "userPrincipalName", "mail", "accountEnabled"}

// ResolveUsers looks up every user's Entra object id by UPN (User.Read.All)
// and returns the users with TeamsID filled in. Users that are unknown,
// disabled or have no UPN are left out and reported; an error means Graph
// could not be asked at all.
func (c *Client) ResolveUsers(ctx context.Context, us []psync.User) ([]psync.User, []UserProblem, error) {
	var ok []psync.User
	var probs []UserProblem
	for _, u := range us {
		key := u.UPN
		if key == "" {
			key = u.TeamsID
		}
		if key == "" {
			probs = append(probs, UserProblem{User: u.ID, Reason: "no UPN: set the user's Entra UPN"})
			continue
		}
		var got models.Userable
		err := c.call("getUser", func() error {
			var err error
			got, err = c.graph.Users().ByUserId(key).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
				QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect},
			})
			return err
		})
		switch {
		case statusOf(err) == 404:
			probs = append(probs, UserProblem{User: u.ID, UPN: u.UPN, Reason: "unknown in Entra: check the UPN"})
			continue
		case err != nil:
			return nil, probs, err
		}
		if en := got.GetAccountEnabled(); en != nil && !*en {
			probs = append(probs, UserProblem{User: u.ID, UPN: u.UPN, Reason: "account disabled in Entra"})
			continue
		}
		u.TeamsID = deref(got.GetId())
		if u.DisplayName == "" {
			u.DisplayName = deref(got.GetDisplayName())
		}
		c.remember(u)
		ok = append(ok, u)
	}
	for _, p := range probs {
		c.log.Warn("user not followed in Teams", "user", p.User, "upn", p.UPN, "reason", p.Reason)
		c.addProblem(psync.Problem{At: c.cfg.Now(), What: p.String() + ": not followed in Teams", Fix: "correct the user's UPN (presencebridge config, or the console) or remove the user"})
	}
	return ok, probs, nil
}

// GroupMembers returns the user members of an Entra group (nested groups
// and devices are skipped), following every page. Their id is the UPN in
// lower case until the admin maps them to the phone system.
func (c *Client) GroupMembers(ctx context.Context, groupID string) ([]psync.User, error) {
	var out []psync.User
	next := ""
	for {
		var page models.DirectoryObjectCollectionResponseable
		err := c.call("groupMembers", func() error {
			var err error
			b := c.graph.Groups().ByGroupId(groupID).Members()
			if next != "" {
				page, err = b.WithUrl(next).Get(ctx, nil)
			} else {
				page, err = b.Get(ctx, nil)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, o := range page.GetValue() {
			m, ok := o.(models.Userable)
			if !ok {
				continue
			}
			if en := m.GetAccountEnabled(); en != nil && !*en {
				continue
			}
			upn := deref(m.GetUserPrincipalName())
			out = append(out, psync.User{ID: psync.UserID(strings.ToLower(upn)), UPN: upn, TeamsID: deref(m.GetId()), DisplayName: deref(m.GetDisplayName())})
		}
		next = deref(page.GetOdataNextLink())
		if next == "" {
			return out, nil
		}
	}
}

func (c *Client) remember(u psync.User) {
	if u.TeamsID == "" {
		return
	}
	c.mu.Lock()
	c.objectID[u.ID] = u.TeamsID
	c.userOf[strings.ToLower(u.TeamsID)] = u.ID
	c.mu.Unlock()
}

// idOf is the key Graph knows the user by: the object id, else the UPN.
func (c *Client) idOf(u psync.User) string {
	c.mu.Lock()
	id := c.objectID[u.ID]
	c.mu.Unlock()
	switch {
	case id != "":
		return id
	case u.TeamsID != "":
		return u.TeamsID
	}
	return u.UPN
}
