package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
)

// GroupImport says what `config import-group` did.
type GroupImport struct {
	Members int `json:"members"`
	Added   int `json:"added"`
	Known   int `json:"known"`
}

// ImportGroup adds the members of an Entra group as users. A member's id
// is the phone system's key for them: the UCServer contact id for their
// e-mail, else their UPN. Users already there (by UPN) keep their id and
// profile and get the member's Teams id.
func (a *Admin) ImportGroup(ctx context.Context, groupID string) (GroupImport, error) {
	if !psync.IsGUID(groupID) {
		return GroupImport{}, errorf(ErrInvalid, "group %q is not an Entra group object id (a GUID; the group's overview in the Entra admin center shows it)", clip(groupID))
	}
	values, err := a.db.Settings()
	if err != nil {
		return GroupImport{}, a.storeErr(err)
	}
	cfg, err := teams.ConfigFromSettings(teamsSettings(values))
	if err != nil {
		return GroupImport{}, errorf(ErrNotConfigured, "reading a group needs the Teams settings: %v", err)
	}
	cfg.Mode = "poll" // reading the directory needs no subscription
	cfg.HTTPClient = a.sides.TeamsHTTPClient
	c, err := teams.New(cfg)
	if err != nil {
		return GroupImport{}, errorf(ErrNotConfigured, "%v", err)
	}
	defer c.Close()
	members, err := c.GroupMembers(ctx, groupID) // no lock held over the network call
	if err != nil {
		return GroupImport{}, fmt.Errorf("group %s: %w", groupID, err)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	have, err := a.db.Users()
	if err != nil {
		return GroupImport{}, a.storeErr(err)
	}
	byUPN := map[string]psync.User{}
	for _, u := range have {
		byUPN[strings.ToLower(u.UPN)] = u
	}
	out := GroupImport{Members: len(members)}
	for _, m := range members {
		if old, ok := byUPN[strings.ToLower(m.UPN)]; ok && m.UPN != "" {
			old.TeamsID = m.TeamsID
			if err := a.updateUser(ctx, old); err != nil {
				return out, err
			}
			out.Known++
			continue
		}
		m.ID = phoneUserID(values, m.UPN)
		if _, err := a.db.User(m.ID); err == nil {
			out.Known++
			continue // the id is taken by a user of another UPN; left alone
		} else if !errors.Is(err, store.ErrNotFound) {
			return out, a.storeErr(err)
		}
		if err := a.addUser(ctx, m); err != nil {
			return out, err
		}
		out.Added++
	}
	return out, nil
}
