package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// principal is the caller of a Graph request, from its validated access token.
type principal struct {
	appID     string
	delegated bool
	userID    string
	roles     []string // as in the token
	scopes    []string
}

func (p *principal) has(names []string, granted []string) bool {
	for _, n := range names {
		for _, g := range granted {
			if strings.EqualFold(n, g) {
				return true
			}
		}
	}
	return false
}

// perms lists what an endpoint accepts: application roles, delegated scopes, and delegated
// scopes that only allow acting on the signed-in user.
type perms struct {
	app, delegated, self []string
	// teams selects the Teams-service (presence) flavour of the 403 body; otherwise the
	// directory flavour.
	teams bool
}

var (
	permReadUser = perms{
		app:       []string{"User.Read.All", "User.ReadWrite.All", "User.ReadBasic.All", "Directory.Read.All", "Directory.ReadWrite.All"},
		delegated: []string{"User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
		self:      []string{"User.Read", "User.ReadWrite"},
	}
	permReadMembers = perms{
		app:       []string{"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
		delegated: []string{"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"},
	}
	permReadPresence = perms{
		app:       []string{"Presence.Read.All", "Presence.ReadWrite.All"},
		delegated: []string{"Presence.Read.All", "Presence.ReadWrite.All"},
		self:      []string{"Presence.Read", "Presence.ReadWrite"},
		teams:     true,
	}
	permWritePresence = perms{
		app:   []string{"Presence.ReadWrite.All"},
		self:  []string{"Presence.ReadWrite"},
		teams: true,
	}
	permSubscribePresence = perms{
		delegated: []string{"Presence.Read.All"},
		teams:     true,
	}
)

// authorize writes 403 and returns false unless p may call an endpoint needing pm on behalf of
// target (a user id, or "" when not user-specific).
func (s *Server) authorize(rc *reqCtx, p *principal, pm perms, target string) bool {
	ok := false
	if p.delegated {
		ok = p.has(pm.delegated, p.scopes) || (target != "" && target == p.userID && p.has(pm.self, p.scopes))
	} else {
		ok = p.has(pm.app, p.roles)
	}
	if ok {
		return true
	}
	if !pm.teams {
		s.writeGraphError(rc, http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		return false
	}
	if p.delegated {
		need := append(append([]string(nil), pm.delegated...), pm.self...)
		s.writeGraphError(rc, http.StatusForbidden, "Forbidden", fmt.Sprintf("Missing scope permissions on the request. API requires one of '%s'. Scopes on the request '%s'.", strings.Join(need, ", "), strings.Join(p.scopes, ", ")))
		return false
	}
	s.writeGraphError(rc, http.StatusForbidden, "Forbidden", fmt.Sprintf("Missing role permissions on the request. API requires one of '%s'. Roles on the request '%s'.", strings.Join(pm.app, ", "), strings.Join(p.roles, ", ")))
	return false
}

func (s *Server) unauthorized(rc *reqCtx, msg string) {
	rc.w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="", authorization_uri="%s/common/oauth2/authorize", client_id="%s"`, s.url, graphResourceGUID))
	s.writeGraphError(rc, http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
}

// authenticateGraph validates the bearer token like Graph: signature by a published key,
// issuer of this tenant, Graph audience, and lifetime against the simulated clock (with
// Microsoft.IdentityModel's five-minute skew).
func (s *Server) authenticateGraph(rc *reqCtx) (*principal, bool) {
	h := rc.r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") || strings.TrimSpace(h[7:]) == "" {
		s.unauthorized(rc, "Access token is empty.")
		return nil, false
	}
	j, err := parseJWT(strings.TrimSpace(h[7:]))
	if err != nil {
		s.unauthorized(rc, "CompactToken parsing failed with error code: 80049217")
		return nil, false
	}
	if j.headerStr("alg") != "RS256" || j.headerStr("kid") != s.pki.signKeyID || j.verify(&s.pki.signKey.PublicKey) != nil {
		s.unauthorized(rc, "Access token validation failure.")
		return nil, false
	}
	if j.str("iss") != s.stsIssuer() || !strings.EqualFold(j.str("tid"), s.tenantID) {
		s.unauthorized(rc, "Access token validation failure. Invalid issuer.")
		return nil, false
	}
	audOK := false
	for _, a := range j.audiences() {
		switch strings.ToLower(strings.TrimSuffix(a, "/")) {
		case graphResourceURL, graphResourceGUID:
			audOK = true
		}
	}
	if !audOK {
		s.unauthorized(rc, "Access token validation failure. Invalid audience.")
		return nil, false
	}
	exp, hasExp := j.unix("exp")
	nbf, hasNbf := j.unix("nbf")
	if !hasExp || rc.now.After(exp.Add(clockSkew)) || (hasNbf && rc.now.Add(clockSkew).Before(nbf)) {
		s.unauthorized(rc, "Access token has expired or is not yet valid.")
		return nil, false
	}
	p := &principal{appID: strings.ToLower(j.str("appid"))}
	if roles, ok := j.claims["roles"].([]any); ok {
		for _, r := range roles {
			if rs, ok := r.(string); ok {
				p.roles = append(p.roles, rs)
			}
		}
	}
	if scp := j.str("scp"); scp != "" || j.str("idtyp") == "user" {
		p.delegated = true
		p.userID = strings.ToLower(j.str("oid"))
		p.scopes = strings.Fields(scp)
	}
	return p, true
}

// graphPathSegments splits the path after /v1.0/ into unescaped segments, so that
// users/alice%40contoso.com and users('id') both work.
func graphPathSegments(r *http.Request) []string {
	ep := strings.TrimPrefix(r.URL.EscapedPath(), "/v1.0")
	var out []string
	for _, seg := range strings.Split(strings.Trim(ep, "/"), "/") {
		if seg == "" {
			continue
		}
		if u, err := url.PathUnescape(seg); err == nil {
			seg = u
		}
		out = append(out, seg)
	}
	return out
}

// keyOf turns users('x') style keys and plain keys into x.
func keyOf(seg string) (name, key string) {
	if i := strings.Index(seg, "("); i > 0 && strings.HasSuffix(seg, ")") {
		return seg[:i], strings.Trim(seg[i+1:len(seg)-1], "'")
	}
	return seg, ""
}

// action strips the optional microsoft.graph. namespace of OData actions.
func action(seg string) string {
	return strings.ToLower(strings.TrimPrefix(strings.ToLower(seg), "microsoft.graph."))
}

func (s *Server) serveGraph(rc *reqCtx) {
	p, ok := s.authenticateGraph(rc)
	if !ok {
		return
	}
	rc.entry.AppID, rc.entry.UserID = p.appID, p.userID
	s.mu.Lock()
	wait, ok := s.chargeBudgetLocked(p.appID, rc.now)
	s.mu.Unlock()
	if !ok {
		rc.w.Header().Set("Retry-After", retryAfterSeconds(wait))
		rc.entry.Fault = "request budget"
		s.writeGraphError(rc, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		return
	}

	segs := graphPathSegments(rc.r)
	// Normalise users('id')/communications/presences('id') to path keys.
	var norm []string
	for _, seg := range segs {
		if name, key := keyOf(seg); key != "" {
			norm = append(norm, name, key)
			continue
		}
		norm = append(norm, seg)
	}
	segs = norm
	if len(segs) == 0 {
		s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", "Invalid request.")
		return
	}
	m := rc.r.Method
	lower := make([]string, len(segs))
	for i, seg := range segs {
		lower[i] = strings.ToLower(seg)
	}
	switch lower[0] {
	case "users":
		switch {
		case len(segs) == 1 && m == http.MethodGet:
			s.handleListUsers(rc, p)
		case len(segs) == 2 && m == http.MethodGet:
			s.handleGetUser(rc, p, segs[1])
		case len(segs) == 3 && lower[2] == "presence" && m == http.MethodGet:
			s.handleGetPresence(rc, p, segs[1], true)
		case len(segs) == 4 && lower[2] == "presence" && m == http.MethodPost:
			s.handlePresenceAction(rc, p, segs[1], action(segs[3]), true)
		default:
			s.notFoundSegment(rc, segs)
		}
	case "me":
		if !p.delegated {
			s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", "/me request is only valid with delegated authentication flow.")
			return
		}
		switch {
		case len(segs) == 1 && m == http.MethodGet:
			s.handleGetUser(rc, p, p.userID)
		case len(segs) == 2 && lower[1] == "presence" && m == http.MethodGet:
			s.handleGetPresence(rc, p, p.userID, true)
		case len(segs) == 3 && lower[1] == "presence" && m == http.MethodPost:
			s.handlePresenceAction(rc, p, p.userID, action(segs[2]), true)
		default:
			s.notFoundSegment(rc, segs)
		}
	case "communications":
		switch {
		case len(segs) == 2 && action(segs[1]) == "getpresencesbyuserid" && m == http.MethodPost:
			s.handleGetPresencesByUserID(rc, p)
		case len(segs) == 3 && lower[1] == "presences" && m == http.MethodGet:
			s.handleGetPresence(rc, p, segs[2], false)
		case len(segs) == 4 && lower[1] == "presences" && m == http.MethodPost:
			s.handlePresenceAction(rc, p, segs[2], action(segs[3]), false)
		default:
			s.notFoundSegment(rc, segs)
		}
	case "groups":
		if len(segs) == 3 && lower[2] == "members" && m == http.MethodGet {
			s.handleGroupMembers(rc, p, segs[1])
			return
		}
		s.notFoundSegment(rc, segs)
	case "subscriptions":
		switch {
		case len(segs) == 1 && m == http.MethodPost:
			s.handleCreateSubscription(rc, p)
		case len(segs) == 1 && m == http.MethodGet:
			s.handleListSubscriptions(rc, p)
		case len(segs) == 2 && m == http.MethodGet:
			s.handleGetSubscription(rc, p, segs[1])
		case len(segs) == 2 && m == http.MethodPatch:
			s.handleUpdateSubscription(rc, p, segs[1])
		case len(segs) == 2 && m == http.MethodDelete:
			s.handleDeleteSubscription(rc, p, segs[1])
		case len(segs) == 3 && action(segs[2]) == "reauthorize" && m == http.MethodPost:
			s.handleReauthorize(rc, p, segs[1])
		default:
			s.notFoundSegment(rc, segs)
		}
	default:
		s.notFoundSegment(rc, segs)
	}
}

func (s *Server) notFoundSegment(rc *reqCtx, segs []string) {
	last := segs[len(segs)-1]
	s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", last))
}

// decodeJSON parses the request body into v, answering 400 like Graph when it is not JSON.
func (s *Server) decodeJSON(rc *reqCtx, v any) bool {
	if err := json.Unmarshal(rc.body, v); err != nil {
		s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", msgBadJSON)
		return false
	}
	return true
}

var userDefaultFields = []string{"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id"}

var userKnownFields = canonicalSet(append([]string{"accountEnabled", "mailNickname"}, userDefaultFields...)...)

// parseSelect returns the $select fields (canonical names) or nil for the default set.
func (s *Server) parseSelect(rc *reqCtx) ([]string, bool) {
	raw := rc.r.URL.Query().Get("$select")
	if raw == "" {
		return nil, true
	}
	var out []string
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		canon, ok := userKnownFields[strings.ToLower(f)]
		if !ok {
			s.writeGraphError(rc, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Could not find a property named '%s' on type 'Microsoft.DirectoryServices.User'.", f))
			return nil, false
		}
		out = append(out, canon)
	}
	return out, true
}

// userJSON renders a user with Graph's default property set, or the $select-ed one
// (accountEnabled is only returned when selected, as in Graph).
func userJSON(u User, sel []string) map[string]any {
	fields := sel
	if fields == nil {
		fields = userDefaultFields
	}
	out := map[string]any{}
	var mail any
	if u.Mail != "" {
		mail = u.Mail
	}
	for _, f := range fields {
		switch f {
		case "businessPhones":
			out[f] = []string{}
		case "displayName":
			out[f] = u.DisplayName
		case "mail":
			out[f] = mail
		case "userPrincipalName":
			out[f] = u.UserPrincipalName
		case "id":
			out[f] = u.ID
		case "accountEnabled":
			out[f] = !u.Disabled
		case "mailNickname":
			out[f] = strings.SplitN(u.UserPrincipalName, "@", 2)[0]
		default:
			out[f] = nil
		}
	}
	out["id"] = u.ID
	return out
}

func (s *Server) handleGetUser(rc *reqCtx, p *principal, key string) {
	sel, ok := s.parseSelect(rc)
	if !ok {
		return
	}
	s.mu.Lock()
	id, found := s.resolveUserLocked(key)
	var u User
	if found {
		u = s.users[id].user
	}
	s.mu.Unlock()
	if !s.authorize(rc, p, permReadUser, id) {
		return
	}
	if !found {
		s.writeGraphError(rc, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", key))
		return
	}
	body := userJSON(u, sel)
	ctx := s.GraphURL() + "/$metadata#users/$entity"
	if sel != nil {
		ctx = s.GraphURL() + "/$metadata#users(" + strings.Join(sel, ",") + ")/$entity"
	}
	body["@odata.context"] = ctx
	s.writeGraph(rc, http.StatusOK, body)
}

// page returns the slice [offset, offset+top) of n items and the next offset (-1 at the end),
// from $top and $skiptoken. Graph's skip tokens are opaque; ours encode the offset.
func (s *Server) page(rc *reqCtx, n int) (from, to, next int, ok bool) {
	q := rc.r.URL.Query()
	top := s.opts.PageSize
	if t := q.Get("$top"); t != "" {
		v, err := strconv.Atoi(t)
		if err != nil || v < 1 || v > 999 {
			s.writeGraphError(rc, http.StatusBadRequest, "Request_BadRequest", fmt.Sprintf("Invalid page size specified: '%s'. Must be between 1 and 999 inclusive.", t))
			return 0, 0, 0, false
		}
		top = v
	}
	if tok := q.Get("$skiptoken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		v, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || v < 0 {
			s.writeGraphError(rc, http.StatusBadRequest, "Request_BadRequest", "Invalid skip token.")
			return 0, 0, 0, false
		}
		from = v
	}
	from = min(from, n)
	to = min(from+top, n)
	next = -1
	if to < n {
		next = to
	}
	return from, to, next, true
}

func (s *Server) nextLink(rc *reqCtx, next int) string {
	q := rc.r.URL.Query()
	q.Set("$skiptoken", b64url([]byte("offset:"+strconv.Itoa(next))))
	return s.url + rc.r.URL.EscapedPath() + "?" + q.Encode()
}

func (s *Server) handleListUsers(rc *reqCtx, p *principal) {
	if !s.authorize(rc, p, permReadUser, "") {
		return
	}
	sel, ok := s.parseSelect(rc)
	if !ok {
		return
	}
	s.mu.Lock()
	all := make([]User, 0, len(s.userOrder))
	for _, id := range s.userOrder {
		all = append(all, s.users[id].user)
	}
	s.mu.Unlock()
	from, to, next, ok := s.page(rc, len(all))
	if !ok {
		return
	}
	vals := make([]any, 0, to-from)
	for _, u := range all[from:to] {
		vals = append(vals, userJSON(u, sel))
	}
	body := map[string]any{"@odata.context": s.GraphURL() + "/$metadata#users", "value": vals}
	if next >= 0 {
		body["@odata.nextLink"] = s.nextLink(rc, next)
	}
	s.writeGraph(rc, http.StatusOK, body)
}

func (s *Server) handleGroupMembers(rc *reqCtx, p *principal, groupID string) {
	if !s.authorize(rc, p, permReadMembers, "") {
		return
	}
	sel, ok := s.parseSelect(rc)
	if !ok {
		return
	}
	s.mu.Lock()
	g := s.groups[strings.ToLower(groupID)]
	var members []User
	if g != nil {
		for _, id := range g.Members {
			if us := s.users[id]; us != nil {
				members = append(members, us.user)
			}
		}
	}
	s.mu.Unlock()
	if g == nil {
		s.writeGraphError(rc, http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", groupID))
		return
	}
	from, to, next, ok := s.page(rc, len(members))
	if !ok {
		return
	}
	vals := make([]any, 0, to-from)
	for _, u := range members[from:to] {
		j := userJSON(u, sel)
		j["@odata.type"] = "#microsoft.graph.user"
		vals = append(vals, j)
	}
	body := map[string]any{"@odata.context": s.GraphURL() + "/$metadata#directoryObjects", "value": vals}
	if next >= 0 {
		body["@odata.nextLink"] = s.nextLink(rc, next)
	}
	s.writeGraph(rc, http.StatusOK, body)
}

// presenceTarget resolves the user a presence path names; byUPN allows /users/{upn}.
func (s *Server) presenceTargetLocked(key string, byUPN bool) (*userState, bool) {
	if byUPN {
		if id, ok := s.resolveUserLocked(key); ok {
			return s.users[id], true
		}
		return nil, false
	}
	us := s.users[strings.ToLower(key)]
	return us, us != nil
}

func (s *Server) presenceNotFound(rc *reqCtx, key string) {
	s.writeGraphError(rc, http.StatusNotFound, "NotFound", fmt.Sprintf("The user '%s' was not found.", key))
}

func (s *Server) handleGetPresence(rc *reqCtx, p *principal, key string, byUPN bool) {
	s.mu.Lock()
	s.advanceLocked(rc.now)
	us, ok := s.presenceTargetLocked(key, byUPN)
	var body map[string]any
	target := ""
	if ok {
		body = s.presenceJSON(us)
		target = us.user.ID
	}
	s.mu.Unlock()
	if !s.authorize(rc, p, permReadPresence, target) {
		return
	}
	if !ok {
		s.presenceNotFound(rc, key)
		return
	}
	if byUPN {
		body["@odata.context"] = fmt.Sprintf("%s/$metadata#users('%s')/presence/$entity", s.GraphURL(), key)
	} else {
		body["@odata.context"] = s.GraphURL() + "/$metadata#communications/presences/$entity"
	}
	s.writeGraph(rc, http.StatusOK, body)
}

const maxPresenceIDs = 650

func (s *Server) handleGetPresencesByUserID(rc *reqCtx, p *principal) {
	if !s.authorize(rc, p, permReadPresence, "") {
		return
	}
	var req struct {
		IDs []string `json:"ids"`
	}
	if !s.decodeJSON(rc, &req) {
		return
	}
	if len(req.IDs) == 0 {
		s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", "The request must contain at least one user id in 'ids'.")
		return
	}
	uniq := make([]string, 0, len(req.IDs))
	seen := map[string]bool{}
	for _, id := range req.IDs {
		l := strings.ToLower(strings.TrimSpace(id))
		if !isGUID(l) {
			s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The provided user id '%s' is not a valid GUID.", id))
			return
		}
		if !seen[l] {
			seen[l] = true
			uniq = append(uniq, l)
		}
	}
	if len(uniq) > maxPresenceIDs {
		s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", fmt.Sprintf("The number of user ids (%d) exceeds the maximum of %d.", len(uniq), maxPresenceIDs))
		return
	}
	s.mu.Lock()
	s.advanceLocked(rc.now)
	vals := make([]any, 0, len(uniq))
	for _, id := range uniq {
		// Unknown (well-formed) ids come back as PresenceUnknown rather than failing the batch.
		if us := s.users[id]; us != nil {
			vals = append(vals, s.presenceJSON(us))
		} else {
			vals = append(vals, unknownPresenceJSON(id))
		}
	}
	s.mu.Unlock()
	s.writeGraph(rc, http.StatusOK, map[string]any{
		"@odata.context": s.GraphURL() + "/$metadata#Collection(microsoft.graph.presence)",
		"value":          vals,
	})
}

func (s *Server) handlePresenceAction(rc *reqCtx, p *principal, key, act string, byUPN bool) {
	switch act {
	case "setpresence", "clearpresence", "setuserpreferredpresence", "clearuserpreferredpresence", "setstatusmessage":
	default:
		s.writeGraphError(rc, http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", act))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked(rc.now)
	us, ok := s.presenceTargetLocked(key, byUPN)
	target := ""
	if ok {
		target = us.user.ID
	}
	if !s.authorize(rc, p, permWritePresence, target) {
		return
	}
	if !ok {
		s.presenceNotFound(rc, key)
		return
	}
	switch act {
	case "setpresence":
		s.setPresenceLocked(rc, p, us)
	case "clearpresence":
		s.clearPresenceLocked(rc, p, us)
	case "setuserpreferredpresence":
		s.setPreferredLocked(rc, us)
	case "clearuserpreferredpresence":
		us.preferred = nil
		s.refreshUserLocked(us, rc.now)
		rc.w.WriteHeader(http.StatusOK)
	case "setstatusmessage":
		s.setStatusMessageLocked(rc, us)
	}
}

func (s *Server) invalidArgument(rc *reqCtx, what string) {
	s.writeGraphError(rc, http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("The provided [%s] is invalid.", what))
}

func (s *Server) setPresenceLocked(rc *reqCtx, p *principal, us *userState) {
	var req struct {
		SessionID          string `json:"sessionId"`
		Availability       string `json:"availability"`
		Activity           string `json:"activity"`
		ExpirationDuration string `json:"expirationDuration"`
	}
	if !s.decodeJSON(rc, &req) {
		return
	}
	// Microsoft: "Provide the ID of the application as sessionId". Whether Graph rejects other
	// values is undocumented; rejecting them keeps adapters honest.
	if !isGUID(req.SessionID) || !strings.EqualFold(req.SessionID, p.appID) {
		s.invalidArgument(rc, "SessionId")
		return
	}
	avail, aok := availabilities[strings.ToLower(req.Availability)]
	actv, cok := activities[strings.ToLower(req.Activity)]
	if !aok || !cok || !setPresenceCombos[[2]string{avail, actv}] {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("The provided [Availability, Activity] combination [%s, %s] is not supported.", req.Availability, req.Activity))
		return
	}
	d := defaultSessionExpiry
	if req.ExpirationDuration != "" {
		var ok bool
		d, ok = parseISODuration(req.ExpirationDuration)
		if !ok {
			s.invalidArgument(rc, "ExpirationDuration")
			return
		}
		if d < minSessionExpiry || d > maxSessionExpiry {
			s.writeGraphError(rc, http.StatusBadRequest, "InvalidArgument", "The provided [ExpirationDuration] is out of range.")
			return
		}
	}
	key := strings.ToLower(req.SessionID)
	ss := us.sessions[key]
	if ss == nil {
		ss = &session{id: key, appID: p.appID, fades: true}
		us.sessions[key] = ss
	}
	if ss.availability != avail || ss.activity != actv {
		ss.touch = s.nextTouchLocked()
	}
	ss.availability, ss.activity = avail, actv
	ss.setAt = rc.now
	ss.expiresAt = rc.now.Add(d)
	s.refreshUserLocked(us, rc.now)
	rc.w.WriteHeader(http.StatusOK)
}

func (s *Server) clearPresenceLocked(rc *reqCtx, p *principal, us *userState) {
	var req struct {
		SessionID string `json:"sessionId"`
	}
	if !s.decodeJSON(rc, &req) {
		return
	}
	key := strings.ToLower(req.SessionID)
	ss := us.sessions[key]
	// An app can only clear its own session; another app's looks like no session at all.
	if ss == nil || ss.appID == "" || ss.appID != p.appID {
		s.writeGraphError(rc, http.StatusNotFound, "NotFound", fmt.Sprintf("The presence session '%s' was not found.", req.SessionID))
		return
	}
	delete(us.sessions, key)
	s.refreshUserLocked(us, rc.now)
	rc.w.WriteHeader(http.StatusOK)
}

// preferredDefault is Microsoft's default expiry of a user-preferred presence.
func preferredDefault(availability string) time.Duration {
	if availability == "DoNotDisturb" || availability == "Busy" {
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

func (s *Server) setPreferredLocked(rc *reqCtx, us *userState) {
	var req struct {
		Availability       string `json:"availability"`
		Activity           string `json:"activity"`
		ExpirationDuration string `json:"expirationDuration"`
	}
	if !s.decodeJSON(rc, &req) {
		return
	}
	avail, aok := availabilities[strings.ToLower(req.Availability)]
	actv, cok := activities[strings.ToLower(req.Activity)]
	if !aok || !cok || !preferredCombos[[2]string{avail, actv}] {
		s.writeGraphError(rc, http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("The provided [Availability, Activity] combination [%s, %s] is not supported.", req.Availability, req.Activity))
		return
	}
	d := preferredDefault(avail)
	if req.ExpirationDuration != "" {
		var ok bool
		d, ok = parseISODuration(req.ExpirationDuration)
		if !ok || d <= 0 {
			s.invalidArgument(rc, "ExpirationDuration")
			return
		}
	}
	us.preferred = &preferredPresence{availability: avail, activity: actv, expiresAt: rc.now.Add(d)}
	s.refreshUserLocked(us, rc.now)
	rc.w.WriteHeader(http.StatusOK)
}

func (s *Server) setStatusMessageLocked(rc *reqCtx, us *userState) {
	var req struct {
		StatusMessage *struct {
			Message *struct {
				Content     string `json:"content"`
				ContentType string `json:"contentType"`
			} `json:"message"`
			ExpiryDateTime *struct {
				DateTime string `json:"dateTime"`
				TimeZone string `json:"timeZone"`
			} `json:"expiryDateTime"`
		} `json:"statusMessage"`
	}
	if !s.decodeJSON(rc, &req) {
		return
	}
	if req.StatusMessage == nil || req.StatusMessage.Message == nil {
		s.invalidArgument(rc, "StatusMessage")
		return
	}
	if ct := req.StatusMessage.Message.ContentType; ct != "" && !strings.EqualFold(ct, "text") {
		s.invalidArgument(rc, "ContentType")
		return
	}
	st := &statusMessage{content: req.StatusMessage.Message.Content, published: rc.now}
	if e := req.StatusMessage.ExpiryDateTime; e != nil && e.DateTime != "" {
		loc := time.UTC
		if e.TimeZone != "" && !strings.EqualFold(e.TimeZone, "UTC") {
			l, err := time.LoadLocation(e.TimeZone)
			if err != nil {
				s.invalidArgument(rc, "TimeZone")
				return
			}
			loc = l
		}
		t, err := time.ParseInLocation("2006-01-02T15:04:05.9999999", e.DateTime, loc)
		if err != nil {
			s.invalidArgument(rc, "ExpiryDateTime")
			return
		}
		st.expiresAt = t
	}
	if st.content == "" {
		us.status = nil
	} else {
		us.status = st
	}
	s.refreshUserLocked(us, rc.now)
	rc.w.WriteHeader(http.StatusOK)
}
