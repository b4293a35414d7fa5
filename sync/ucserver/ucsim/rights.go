package ucsim

// Rights is what the server reports about a user's rights: the user's own
// static rights (in asnGetLoggedInContactV2 when the user is logged in, and
// in presence with flag SubConfiguration) and the contact feature set a
// watcher gets for this user.
//
// The simulator only reports rights; it enforces none (Guess 4): an
// account without a right still gets every answer. Tests that need a
// refusal install an OperationFault.
type Rights struct {
	// StaticRights is iStaticRights (AsnUserStaticRights bits): 4 may log in
	// through the web services, 64 CTI lines, 2048 CTI/presence user.
	StaticRights int
	// StaticRights2 is iStaticRights2 (AsnUserStaticRights2 bits).
	StaticRights2 int
	// ContactFeatureSet is iContactFeatureSet (AsnContactFeatureSetEnum
	// bits) as every watcher sees it: 2048 may set this user's absent state.
	ContactFeatureSet int
}

// FullRights is what a user without User.Rights reports: every right.
var FullRights = Rights{StaticRights: simStaticRights, StaticRights2: simStaticRights2, ContactFeatureSet: simFeatureSet}

func (u *user) rights() Rights {
	if u.spec.Rights != nil {
		return *u.spec.Rights
	}
	return FullRights
}
