package service

import (
	"fmt"
	"strconv"
	"strings"
)

// macOS has no useradd: a system account is made with dscl, under an id
// below 500 that no user or group has (as Homebrew's and MacPorts' service
// users are). This code is built on every OS so that its plan is tested
// here; it runs only on macOS.

// darwinIDs is the range searched for a free system id.
const darwinIDLow, darwinIDHigh = 200, 400

func darwinAccountStep(account string) SetupStep {
	return SetupStep{
		Desc: fmt.Sprintf("dscl: create group and user %s (id: the first free one from %d to %d), shell /usr/bin/false, home /var/empty, hidden; "+
			"unless they exist", account, darwinIDLow, darwinIDHigh),
		Do: func(env setupEnv) error { return createDarwinAccount(env, account) },
	}
}

func createDarwinAccount(env setupEnv, account string) error {
	_, groupErr := env.run([]string{"dscl", ".", "-read", "/Groups/" + account})
	_, userErr := env.run([]string{"dscl", ".", "-read", "/Users/" + account})
	if groupErr == nil && userErr == nil {
		return nil
	}
	users, err := env.run([]string{"dscl", ".", "-list", "/Users", "UniqueID"})
	if err != nil {
		return err
	}
	groups, err := env.run([]string{"dscl", ".", "-list", "/Groups", "PrimaryGroupID"})
	if err != nil {
		return err
	}
	gid := 0
	if groupErr == nil {
		// Keep the group's id and give the user the same one if free.
		gid = darwinIDOf(groups, account)
	}
	id, err := freeDarwinID(users, groups, gid)
	if err != nil {
		return err
	}
	if gid == 0 {
		gid = id
	}
	for _, argv := range darwinAccountCommands(account, id, gid, groupErr != nil, userErr != nil) {
		if _, err := env.run(argv); err != nil {
			return err
		}
	}
	return nil
}

// darwinAccountCommands are the dscl commands that make the group (gid)
// and the user (uid) of the service.
func darwinAccountCommands(account string, uid, gid int, group, user bool) [][]string {
	var cmds [][]string
	if group {
		g := "/Groups/" + account
		cmds = append(cmds,
			[]string{"dscl", ".", "-create", g},
			[]string{"dscl", ".", "-create", g, "PrimaryGroupID", strconv.Itoa(gid)},
			[]string{"dscl", ".", "-create", g, "RealName", "presencebridge"},
			[]string{"dscl", ".", "-create", g, "Password", "*"},
		)
	}
	if user {
		u := "/Users/" + account
		cmds = append(cmds,
			[]string{"dscl", ".", "-create", u},
			[]string{"dscl", ".", "-create", u, "UniqueID", strconv.Itoa(uid)},
			[]string{"dscl", ".", "-create", u, "PrimaryGroupID", strconv.Itoa(gid)},
			[]string{"dscl", ".", "-create", u, "RealName", "presencebridge service"},
			[]string{"dscl", ".", "-create", u, "NFSHomeDirectory", "/var/empty"},
			[]string{"dscl", ".", "-create", u, "UserShell", "/usr/bin/false"},
			[]string{"dscl", ".", "-create", u, "Password", "*"},
			[]string{"dscl", ".", "-create", u, "IsHidden", "1"},
		)
	}
	return cmds
}

// darwinIDOf reads the id of name from `dscl . -list … ID` output.
func darwinIDOf(list, name string) int {
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			if n, err := strconv.Atoi(f[1]); err == nil {
				return n
			}
		}
	}
	return 0
}

// freeDarwinID returns prefer when no user has it, else the first id in
// the system range that no user and no group has.
func freeDarwinID(users, groups string, prefer int) (int, error) {
	taken := map[int]bool{}
	for _, list := range []string{users, groups} {
		for _, line := range strings.Split(list, "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			if n, err := strconv.Atoi(f[1]); err == nil {
				taken[n] = true
			}
		}
	}
	if prefer > 0 {
		userHas := false
		for _, line := range strings.Split(users, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[1] == strconv.Itoa(prefer) {
				userHas = true
			}
		}
		if !userHas {
			return prefer, nil
		}
	}
	for id := darwinIDLow; id <= darwinIDHigh; id++ {
		if !taken[id] {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free system id from %d to %d for the service's account; create the user and group _presencebridge by hand", darwinIDLow, darwinIDHigh)
}
