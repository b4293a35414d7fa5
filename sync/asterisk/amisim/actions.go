package amisim

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// reply renders a response with the action's ActionID.
func reply(id string, fields ...string) []byte {
	var b strings.Builder
	b.WriteString(fields[0] + "\r\n")
	if id != "" {
		b.WriteString("ActionID: " + id + "\r\n")
	}
	for _, f := range fields[1:] {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func errorReply(id, msg string) []byte { return reply(id, "Response: Error", "Message: "+msg) }

// maxActions bounds the action log tests read: the newest half is kept
// when it is full.
const maxActions = 10000

func (x *session) handle(m map[string]string) error {
	s := x.srv
	name := strings.ToLower(m["action"])
	id := m["actionid"]
	rec := Action{Name: actionNames[name], Fields: map[string]string{}}
	if rec.Name == "" {
		rec.Name = m["action"]
	}
	for k, v := range m {
		if k != "action" && k != "actionid" && k != "secret" && (k != "key" || name != "login") {
			rec.Fields[k] = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.User, rec.At = x.user, time.Now()
	if len(s.actions) >= maxActions { // a long demo must not grow without end
		s.actions = append(s.actions[:0], s.actions[maxActions/2:]...)
	}
	s.actions = append(s.actions, rec)
	spec, known := actionSpecs[name]
	if name == "login" {
		x.login(id, m)
		return nil
	}
	if name == "challenge" {
		if !strings.EqualFold(m["authtype"], "md5") {
			x.send(errorReply(id, "Must specify AuthType"))
			return nil
		}
		x.challenge = fmt.Sprintf("%09d", mrand.Uint32()%1_000_000_000)
		x.send(reply(id, "Response: Success", "Challenge: "+x.challenge))
		return nil
	}
	if x.user == "" {
		x.send(errorReply(id, "Authentication Required"))
		return nil
	}
	if !known {
		x.send(errorReply(id, "Invalid/unknown command: "+m["action"]+". Use Action: ListCommands to show available commands."))
		return nil
	}
	if spec.class != 0 && x.write&spec.class == 0 {
		x.send(errorReply(id, "Permission denied"))
		return nil
	}
	switch name {
	case "ping":
		if s.noPong {
			return nil
		}
		x.send(reply(id, "Response: Success", "Ping: Pong", fmt.Sprintf("Timestamp: %.6f", float64(time.Now().UnixNano())/1e9)))
	case "logoff":
		x.send(reply(id, "Response: Goodbye", "Message: Thanks for all the fish."))
		return errQuit
	case "events":
		x.events = !strings.EqualFold(m["eventmask"], "off")
		x.send(reply(id, "Response: Success", "Events: "+m["eventmask"]))
	case "listcommands":
		var names []string
		for k, sp := range actionSpecs {
			if sp.class == 0 || x.write&sp.class != 0 {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		lines := []string{"Response: Success"}
		for _, k := range names {
			sp := actionSpecs[k]
			lines = append(lines, fmt.Sprintf("%s: %s  (Priv: %s)", actionNames[k], sp.synopsis, classString(sp.class)))
		}
		x.send(reply(id, lines...))
	case "dbget":
		v, ok := s.db[m["family"]+"/"+m["key"]]
		if !ok {
			x.send(errorReply(id, "Database entry not found"))
			return nil
		}
		x.send(reply(id, "Response: Success", "EventList: start", "Message: Result will follow"))
		x.send(reply(id, "Event: DBGetResponse", "Family: "+m["family"], "Key: "+m["key"], "Val: "+v))
		x.send(reply(id, "Event: DBGetComplete", "EventList: Complete", "ListItems: 1"))
	case "dbput":
		if m["family"] == "" || m["key"] == "" {
			x.send(errorReply(id, "No family specified"))
			return nil
		}
		s.db[m["family"]+"/"+m["key"]] = m["val"]
		x.send(reply(id, "Response: Success", "Message: Updated database successfully"))
	case "dbdel":
		k := m["family"] + "/" + m["key"]
		if _, ok := s.db[k]; !ok {
			x.send(errorReply(id, "Database entry not found"))
			return nil
		}
		delete(s.db, k)
		x.send(reply(id, "Response: Success", "Message: Key deleted successfully"))
	case "setvar":
		if msg := s.setvarLocked(m["variable"], m["value"]); msg != "" {
			x.send(errorReply(id, msg))
			return nil
		}
		x.send(reply(id, "Response: Success", "Message: Variable Set"))
	case "getvar":
		v := s.getvarLocked(m["variable"])
		x.send(reply(id, "Response: Success", "Variable: "+m["variable"], "Value: "+v))
	case "devicestatelist":
		x.send(reply(id, "Response: Success", "EventList: start", "Message: Device State Changes will follow"))
		var devs []string
		for d := range s.devs {
			devs = append(devs, d)
		}
		sort.Strings(devs)
		for _, d := range devs {
			x.send(reply(id, "Event: DeviceStateChange", "Device: "+d, "State: "+s.devs[d]))
		}
		x.send(reply(id, "Event: DeviceStateListComplete", "EventList: Complete", "ListItems: "+strconv.Itoa(len(devs))))
	case "extensionstate":
		st := -1
		if _, ok := s.hints[m["exten"]]; ok {
			st = s.aggregateLocked(m["exten"])
		}
		x.send(reply(id, "Response: Success", "Message: Extension Status", "Exten: "+m["exten"], "Context: "+m["context"],
			"Hint: "+s.hints[m["exten"]], "Status: "+strconv.Itoa(st), "StatusText: "+statusText(st)))
	}
	return nil
}

func (x *session) login(id string, m map[string]string) {
	s := x.srv
	acc, ok := s.opts.Accounts[m["username"]]
	if s.failLog > 0 {
		s.failLog--
		ok = false
	}
	good := acc.Secret == m["secret"]
	if strings.EqualFold(m["authtype"], "md5") {
		// manager.c authenticate(): the key is MD5(challenge + secret) in
		// lower-case hex, compared exactly.
		sum := md5.Sum([]byte(x.challenge + acc.Secret))
		good = x.challenge != "" && m["key"] == hex.EncodeToString(sum[:]) // strcmp, lower-case hex
	}
	if !ok || !good {
		x.send(errorReply(id, "Authentication failed"))
		return
	}
	x.user, x.read, x.write = m["username"], parseClasses(acc.Read), parseClasses(acc.Write)
	ev := strings.ToLower(strings.TrimSpace(m["events"]))
	x.events = ev != "off"
	x.send(reply(id, "Response: Success", "Message: Authentication accepted"))
	if x.read&classSystem != 0 && x.events {
		x.send([]byte("Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"))
	}
}

// function splits "NAME(arg)" into NAME and arg.
func function(v string) (string, string, bool) {
	i := strings.IndexByte(v, '(')
	if i <= 0 || !strings.HasSuffix(v, ")") {
		return "", "", false
	}
	return strings.ToUpper(v[:i]), v[i+1 : len(v)-1], true
}

var devStates = map[string]bool{"UNKNOWN": true, "NOT_INUSE": true, "INUSE": true, "BUSY": true, "INVALID": true,
	"UNAVAILABLE": true, "RINGING": true, "RINGINUSE": true, "ONHOLD": true}

var presStates = map[string]bool{"not_set": true, "unavailable": true, "available": true, "away": true, "xa": true, "chat": true, "dnd": true}

func (s *Server) setvarLocked(variable, value string) string {
	fn, arg, ok := function(variable)
	if !ok {
		s.globals[variable] = value
		return ""
	}
	switch fn {
	case "DEVICE_STATE", "DEVSTATE":
		if !strings.HasPrefix(arg, "Custom:") {
			return "Failed to set variable: only Custom: device states can be written"
		}
		st := strings.ToUpper(value)
		if !devStates[st] {
			st = "UNKNOWN" // ast_devstate_val takes unknown text as UNKNOWN
		}
		s.setDevLocked(arg, st)
		return ""
	case "PRESENCE_STATE":
		if !strings.HasPrefix(arg, "CustomPresence:") {
			return "Failed to set variable: only CustomPresence: can be written"
		}
		parts := strings.SplitN(value, ",", 4)
		for len(parts) < 3 {
			parts = append(parts, "")
		}
		if !presStates[strings.ToLower(parts[0])] {
			return "Failed to set variable: unknown presence state " + parts[0]
		}
		p := [3]string{strings.ToLower(parts[0]), parts[1], parts[2]}
		if s.pres[arg] != p {
			s.pres[arg] = p
			s.eventLocked("PresenceStateChange", [][2]string{{"Presentity", arg}, {"Status", p[0]}, {"Subtype", p[1]}, {"Message", p[2]}})
		}
		return ""
	}
	return "Failed to set variable: unknown function " + fn
}

func (s *Server) getvarLocked(variable string) string {
	fn, arg, ok := function(variable)
	if !ok {
		return s.globals[variable]
	}
	switch fn {
	case "DEVICE_STATE", "DEVSTATE":
		if v, ok := s.devs[arg]; ok {
			return v
		}
		if strings.HasPrefix(arg, "Custom:") {
			return "UNKNOWN"
		}
		return "INVALID" // a channel driver knows no such endpoint
	case "PRESENCE_STATE":
		prov, field, _ := strings.Cut(arg, ",")
		p, ok := s.pres[prov]
		if !ok {
			p = [3]string{"not_set", "", ""}
		}
		switch strings.TrimSpace(field) {
		case "subtype":
			return p[1]
		case "message":
			return p[2]
		}
		return p[0]
	}
	return ""
}
