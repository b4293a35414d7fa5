package graphsim

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// App is an app registration with its service principal in the simulated tenant.
type App struct {
	// ClientID is the application (client) id; a GUID.
	ClientID    string
	DisplayName string
	// Secrets are the client secret values that authenticate the app.
	Secrets []string
	// ExpiredSecrets are secret values Entra knows but rejects as expired (AADSTS7000222).
	ExpiredSecrets []string
	// Certificates are the public certificates registered for client assertions.
	Certificates []*x509.Certificate
	// Roles are the admin-consented application permissions on Microsoft Graph, e.g.
	// "Presence.ReadWrite.All", "User.Read.All". They become the access token's roles claim.
	Roles []string
	// DelegatedScopes are the consented delegated permissions on Microsoft Graph, e.g.
	// "Presence.Read.All", "User.Read". Requesting others in a delegated flow fails with
	// AADSTS65001 (consent required).
	DelegatedScopes []string
	// PublicClient is "Allow public client flows": device code and refresh without a client
	// credential. Without it those flows fail with AADSTS7000218.
	PublicClient bool
}

// User is a directory user.
type User struct {
	// ID is the object id (a GUID); generated when empty.
	ID                string
	UserPrincipalName string
	Mail              string
	DisplayName       string
	// Disabled reports accountEnabled=false.
	Disabled bool
}

// Group is a directory group; Members are user object ids.
type Group struct {
	ID          string
	DisplayName string
	Members     []string
}

type appReg struct {
	App
	spOID       string
	roles       map[string]string // lower → as registered
	scopes      map[string]string
	certsSHA1   map[string]*x509.Certificate // hex thumbprint
	certsSHA256 map[string]*x509.Certificate
}

// RegisterApp adds an app registration, or replaces the one with the same client id (so a
// test can revoke a role or rotate a secret while clients are running).
func (s *Server) RegisterApp(a App) error {
	if !isGUID(a.ClientID) {
		return fmt.Errorf("graphsim: app client id %q is not a GUID", a.ClientID)
	}
	reg := &appReg{
		App:         a,
		spOID:       derivedGUID("serviceprincipal", strings.ToLower(a.ClientID)),
		roles:       map[string]string{},
		scopes:      map[string]string{},
		certsSHA1:   map[string]*x509.Certificate{},
		certsSHA256: map[string]*x509.Certificate{},
	}
	reg.ClientID = strings.ToLower(a.ClientID)
	if reg.DisplayName == "" {
		reg.DisplayName = "app " + reg.ClientID[:8]
	}
	for _, r := range a.Roles {
		reg.roles[strings.ToLower(r)] = r
	}
	for _, sc := range a.DelegatedScopes {
		reg.scopes[strings.ToLower(sc)] = sc
	}
	for _, c := range a.Certificates {
		if c == nil {
			continue
		}
		reg.certsSHA1[hex.EncodeToString(sha1Sum(c.Raw))] = c
		reg.certsSHA256[hex.EncodeToString(sha256Sum(c.Raw))] = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[reg.ClientID] = reg
	return nil
}

// AddUser adds a directory user with no presence session (Offline) and returns its id.
func (s *Server) AddUser(u User) (string, error) {
	if u.ID == "" {
		u.ID = newGUID()
	}
	if !isGUID(u.ID) {
		return "", fmt.Errorf("graphsim: user id %q is not a GUID", u.ID)
	}
	u.ID = strings.ToLower(u.ID)
	if u.UserPrincipalName == "" {
		u.UserPrincipalName = "user-" + u.ID[:8] + "@" + s.tenantDomain
	}
	if u.DisplayName == "" {
		u.DisplayName = strings.SplitN(u.UserPrincipalName, "@", 2)[0]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.users[u.ID]; dup {
		return "", fmt.Errorf("graphsim: user %s already exists", u.ID)
	}
	upn := strings.ToLower(u.UserPrincipalName)
	if _, dup := s.upns[upn]; dup {
		return "", fmt.Errorf("graphsim: UPN %s already exists", u.UserPrincipalName)
	}
	s.advanceLocked(s.clock.Now())
	s.users[u.ID] = newUserState(u)
	s.upns[upn] = u.ID
	s.userOrder = append(s.userOrder, u.ID)
	return u.ID, nil
}

// AddGroup adds a group (or replaces the one with the same id).
func (s *Server) AddGroup(g Group) error {
	if g.ID == "" {
		g.ID = newGUID()
	}
	if !isGUID(g.ID) {
		return fmt.Errorf("graphsim: group id %q is not a GUID", g.ID)
	}
	g.ID = strings.ToLower(g.ID)
	members := make([]string, 0, len(g.Members))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range g.Members {
		id, ok := s.resolveUserLocked(m)
		if !ok {
			return fmt.Errorf("graphsim: group %s: unknown member %s", g.ID, m)
		}
		members = append(members, id)
	}
	g.Members = members
	s.groups[g.ID] = &g
	return nil
}

// resolveUserLocked finds a user by object id or UPN (case-insensitive).
func (s *Server) resolveUserLocked(idOrUPN string) (string, bool) {
	k := strings.ToLower(idOrUPN)
	if _, ok := s.users[k]; ok {
		return k, true
	}
	if id, ok := s.upns[k]; ok {
		return id, true
	}
	return "", false
}
