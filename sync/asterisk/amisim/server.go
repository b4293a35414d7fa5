package amisim

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Account is one manager.conf account.
type Account struct {
	Secret string
	// Read and Write are manager.conf class lists ("call", "system,call",
	// "all"). Empty means none.
	Read, Write string
}

// Options configure a Server.
type Options struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// Banner is the greeting; default "Asterisk Call Manager/9.0.0".
	Banner string
	// Accounts by user name.
	Accounts map[string]Account
}

// Action is one action a client sent, for tests to assert on.
type Action struct {
	User   string
	Name   string
	Fields map[string]string
	// At is when the simulator read the action off the socket.
	At time.Time
}

// Server is the simulator. All methods are safe for concurrent use.
type Server struct {
	opts Options
	ln   net.Listener

	mu       sync.Mutex
	db       map[string]string // "family/key"
	devs     map[string]string // device name -> state
	pres     map[string][3]string
	globals  map[string]string
	hints    map[string]string // exten -> "PJSIP/201&Custom:DND201"
	hintSt   map[string]int
	chanNo   int
	sessions map[*session]struct{}
	actions  []Action
	failLog  int
	delay    time.Duration
	noPong   bool
	closed   bool
	wg       sync.WaitGroup
}

// New builds a Server; Start listens.
func New(opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Banner == "" {
		opts.Banner = "Asterisk Call Manager/9.0.0"
	}
	return &Server{opts: opts, db: map[string]string{}, devs: map[string]string{}, pres: map[string][3]string{},
		globals: map[string]string{}, hints: map[string]string{}, hintSt: map[string]int{}, sessions: map[*session]struct{}{}}
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.ln = ln
	s.opts.Addr = ln.Addr().String() // a Start after Stop binds the same port
	s.mu.Unlock()
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				nc.Close()
				return
			}
			ss := &session{srv: s, nc: nc, out: make(chan []byte, 4096), done: make(chan struct{})}
			s.sessions[ss] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(ss.serve)
		}
	})
	return nil
}

// Addr is the listening host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Addr
}

// Stop is Asterisk down: the port refuses connections and every session
// ends; AstDB and device states stay. Start serves again on the same port.
func (s *Server) Stop() {
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	ln.Close()
	s.DropConnections()
}

// Close stops listening and ends every session.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	err := ln.Close()
	s.DropConnections()
	s.wg.Wait()
	return err
}

// DropConnections closes every client connection (the AMI restarting, a
// network cut).
func (s *Server) DropConnections() {
	s.mu.Lock()
	ss := make([]*session, 0, len(s.sessions))
	for x := range s.sessions {
		ss = append(ss, x)
	}
	s.mu.Unlock()
	for _, x := range ss {
		x.close()
	}
}

// Restart is Asterisk restarting: connections drop, calls end, AstDB and
// custom device states (kept in AstDB by Asterisk) survive.
func (s *Server) Restart() {
	s.DropConnections()
	s.mu.Lock()
	for d := range s.devs {
		if !strings.HasPrefix(d, "Custom:") {
			s.devs[d] = "NOT_INUSE"
		}
	}
	for e := range s.hints {
		s.hintSt[e] = s.aggregateLocked(e)
	}
	s.mu.Unlock()
}

// FailLogins makes the next n logins fail as with a wrong secret.
func (s *Server) FailLogins(n int) { s.mu.Lock(); s.failLog = n; s.mu.Unlock() }

// SetDelay delays every answer by d (a loaded PBX).
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// IgnorePings makes Ping go unanswered (a hung AMI whose socket lives).
func (s *Server) IgnorePings(on bool) { s.mu.Lock(); s.noPong = on; s.mu.Unlock() }

// Inject writes raw bytes to every logged-in session.
func (s *Server) Inject(raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for x := range s.sessions {
		if x.user != "" {
			x.send(raw)
		}
	}
}

// Sessions is the number of logged-in sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for x := range s.sessions {
		if x.user != "" {
			n++
		}
	}
	return n
}

// Actions returns the actions received so far (Login's secret blanked).
func (s *Server) Actions() []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.actions)
}

// DB reads AstDB.
func (s *Server) DB(family, key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.db[family+"/"+key]
	return v, ok
}

// PutDB writes AstDB directly (setup, or a person's change outside AMI).
func (s *Server) PutDB(family, key, val string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db[family+"/"+key] = val
}

// DeviceState reads a device's state ("" when unknown).
func (s *Server) DeviceState(dev string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devs[dev]
}

// ExtensionStatus is the hint's aggregate status (0 idle, 1 in use, 2 busy,
// 4 unavailable, 8 ringing, 9 in use and ringing, 16 on hold), -1 without
// a hint.
func (s *Server) ExtensionStatus(ext string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hints[ext]; !ok {
		return -1
	}
	return s.aggregateLocked(ext)
}

// Presence reads PRESENCE_STATE(CustomPresence:ext): state, subtype, message.
func (s *Server) Presence(ext string) (string, string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pres["CustomPresence:"+ext]
	return p[0], p[1], p[2]
}

// AddExtension creates a FreePBX extension with its devices (device ids;
// none means one device named like the extension), PJSIP, idle.
func (s *Server) AddExtension(ext string, devices ...string) {
	if len(devices) == 0 {
		devices = []string{ext}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db["AMPUSER/"+ext+"/device"] = strings.Join(devices, "&")
	var hint []string
	for _, d := range devices {
		s.db["DEVICE/"+d+"/dial"] = "PJSIP/" + d
		s.db["DEVICE/"+d+"/user"] = ext
		s.setDevLocked("PJSIP/"+d, "NOT_INUSE")
		hint = append(hint, "PJSIP/"+d)
	}
	if _, ok := s.devs["Custom:DND"+ext]; !ok {
		s.devs["Custom:DND"+ext] = "UNKNOWN"
	}
	s.hints[ext] = strings.Join(append(hint, "Custom:DND"+ext), "&")
	s.hintSt[ext] = s.aggregateLocked(ext)
}

// AddDevice adds a plain Asterisk device (PJSIP/201) with no FreePBX data.
func (s *Server) AddDevice(dev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDevLocked(dev, "NOT_INUSE")
}

// PersonDND is the person dialling *78 (on) or *79 (off): FreePBX's
// feature code writes AstDB and the custom states itself.
func (s *Server) PersonDND(ext string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "NOT_INUSE"
	if on {
		s.db["DND/"+ext] = "YES"
		state = "BUSY"
	} else {
		delete(s.db, "DND/"+ext)
	}
	for _, d := range strings.Split(s.db["AMPUSER/"+ext+"/device"], "&") {
		if d != "" {
			s.setDevLocked("Custom:DEVDND"+d, state)
		}
	}
	s.setDevLocked("Custom:DND"+ext, state)
}

// PersonPresence is the person (or a phone's feature key) setting
// PRESENCE_STATE(CustomPresence:ext) in the dialplan.
func (s *Server) PersonPresence(ext, state, subtype, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setvarLocked("PRESENCE_STATE(CustomPresence:"+ext+")", state+","+subtype+","+message)
}

// SetDeviceState sets any device's state (a phone unregistering:
// UNAVAILABLE), with its events.
func (s *Server) SetDeviceState(dev, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDevLocked(dev, state)
}

// StartCall makes dev ring.
func (s *Server) StartCall(dev string) { s.SetDeviceState(dev, "RINGING") }

// Answer puts dev in a call.
func (s *Server) Answer(dev string) { s.SetDeviceState(dev, "INUSE") }

// Hold holds dev's call.
func (s *Server) Hold(dev string) { s.SetDeviceState(dev, "ONHOLD") }

// End ends dev's call.
func (s *Server) End(dev string) { s.SetDeviceState(dev, "NOT_INUSE") }

// JoinConference joins dev's call to a ConfBridge: a ConfbridgeJoin event
// with a channel of the device (PJSIP/201-0000000a).
func (s *Server) JoinConference(dev, conference string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chanNo++
	ch := fmt.Sprintf("%s-%08x", dev, s.chanNo)
	s.eventLocked("ConfbridgeJoin", [][2]string{{"Conference", conference}, {"Channel", ch}, {"ChannelState", "6"}, {"ChannelStateDesc", "Up"}})
}

func (s *Server) setDevLocked(dev, state string) {
	if s.devs[dev] == state {
		return // Asterisk raises no event for an unchanged state
	}
	s.devs[dev] = state
	s.eventLocked("DeviceStateChange", [][2]string{{"Device", dev}, {"State", state}})
	for e, h := range s.hints {
		if !slices.Contains(strings.Split(h, "&"), dev) {
			continue
		}
		st := s.aggregateLocked(e)
		if st != s.hintSt[e] {
			s.hintSt[e] = st
			s.eventLocked("ExtensionStatus", [][2]string{{"Exten", e}, {"Context", "ext-local"}, {"Hint", h}, {"Status", strconv.Itoa(st)}, {"StatusText", statusText(st)}})
		}
	}
}

// aggregateLocked is ast_devstate_aggregate over the hint's devices, as
// an extension state.
func (s *Server) aggregateLocked(ext string) int {
	var inuse, busy, ring, hold, idle, unavail bool
	for _, d := range strings.Split(s.hints[ext], "&") {
		switch s.devs[d] {
		case "INUSE":
			inuse = true
		case "BUSY":
			busy = true
		case "RINGING":
			ring = true
		case "RINGINUSE":
			ring, inuse = true, true
		case "ONHOLD":
			hold = true
		case "NOT_INUSE":
			idle = true
		case "UNAVAILABLE", "INVALID":
			unavail = true
		}
	}
	switch {
	case busy:
		return 2
	case inuse && ring:
		return 9
	case inuse && hold:
		return 17
	case inuse:
		return 1
	case ring:
		return 8
	case hold:
		return 16
	case idle:
		return 0
	case unavail:
		return 4
	}
	return 0
}

func statusText(st int) string {
	switch st {
	case 0:
		return "Idle"
	case 1:
		return "InUse"
	case 2:
		return "Busy"
	case 4:
		return "Unavailable"
	case 8:
		return "Ringing"
	case 9:
		return "InUse&Ringing"
	case 16:
		return "Hold"
	case 17:
		return "InUse&Hold"
	}
	return "Unknown"
}

// eventLocked sends an event of class call to every session that may read it.
func (s *Server) eventLocked(name string, fields [][2]string) {
	var b strings.Builder
	b.WriteString("Event: " + name + "\r\nPrivilege: call,all\r\n")
	for _, f := range fields {
		b.WriteString(f[0] + ": " + f[1] + "\r\n")
	}
	b.WriteString("\r\n")
	raw := []byte(b.String())
	for x := range s.sessions {
		if x.user != "" && x.read&classCall != 0 && x.events {
			x.send(raw)
		}
	}
}

// Manager classes (manager.h EVENT_FLAG_*).
const (
	classSystem = 1 << iota
	classCall
	classLog
	classVerbose
	classCommand
	classAgent
	classUser
	classConfig
	classDTMF
	classReporting
	classCDR
	classDialplan
	classOriginate
	classAgi
	classCC
	classAOC
	classTest
	classSecurity
	classMessage
)

var classNames = map[string]int{
	"system": classSystem, "call": classCall, "log": classLog, "verbose": classVerbose,
	"command": classCommand, "agent": classAgent, "user": classUser, "config": classConfig,
	"dtmf": classDTMF, "reporting": classReporting, "cdr": classCDR, "dialplan": classDialplan,
	"originate": classOriginate, "agi": classAgi, "cc": classCC, "aoc": classAOC, "test": classTest,
	"security": classSecurity, "message": classMessage,
}

func parseClasses(s string) int {
	n := 0
	for _, c := range strings.Split(s, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		if c == "all" {
			return ^0
		}
		n |= classNames[c]
	}
	return n
}

func classString(n int) string {
	if n == 0 {
		return "<none>"
	}
	var out []string
	for name, bit := range classNames {
		if n&bit != 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return strings.Join(append(out, "all"), ",")
}

// actionSpec is an action's classes (0: none needed) and synopsis.
type actionSpec struct {
	class    int
	synopsis string
}

var actionSpecs = map[string]actionSpec{
	"ping":            {0, "Keepalive command."},
	"login":           {0, "Login Manager."},
	"logoff":          {0, "Logoff Manager."},
	"events":          {0, "Control Event Flow."},
	"listcommands":    {0, "List available manager commands."},
	"dbget":           {classSystem | classReporting, "Get DB Entry."},
	"dbput":           {classSystem, "Put DB entry."},
	"dbdel":           {classSystem, "Delete DB entry."},
	"setvar":          {classCall, "Sets a channel variable or function value."},
	"getvar":          {classCall | classReporting, "Gets a channel variable or function value."},
	"devicestatelist": {classCall | classReporting, "List the current known device states."},
	"extensionstate":  {classCall | classReporting, "Check Extension Status."},
}

var actionNames = map[string]string{
	"ping": "Ping", "login": "Login", "logoff": "Logoff", "events": "Events", "listcommands": "ListCommands",
	"dbget": "DBGet", "dbput": "DBPut", "dbdel": "DBDel", "setvar": "Setvar", "getvar": "Getvar",
	"devicestatelist": "DeviceStateList", "extensionstate": "ExtensionState",
}

type session struct {
	srv  *Server
	nc   net.Conn
	out  chan []byte
	done chan struct{}
	once sync.Once
	user string // set under srv.mu
	// challenge is the one Action: Challenge handed out (MD5 login).
	challenge string
	read      int
	write     int
	events    bool
}

func (x *session) close() {
	x.once.Do(func() {
		close(x.done)
		x.nc.Close()
	})
}

// send queues raw bytes; a client that does not read is dropped, as
// Asterisk drops a session whose writes time out.
func (x *session) send(raw []byte) {
	select {
	case x.out <- raw:
	default:
		go x.close()
	}
}

var errQuit = errors.New("logoff")

func (x *session) serve() {
	s := x.srv
	defer func() {
		x.close()
		s.mu.Lock()
		delete(s.sessions, x)
		s.mu.Unlock()
	}()
	s.wg.Go(func() {
		for {
			select {
			case b := <-x.out:
				_ = x.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := x.nc.Write(b); err != nil {
					x.close()
					return
				}
			case <-x.done:
				return
			}
		}
	})
	x.send([]byte(s.opts.Banner + "\r\n"))
	br := bufio.NewReaderSize(x.nc, 64<<10)
	for {
		m, err := readAction(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		d := s.delay
		s.mu.Unlock()
		if d > 0 {
			select {
			case <-time.After(d):
			case <-x.done:
				return
			}
		}
		if err := x.handle(m); err != nil {
			return
		}
	}
}

// readAction reads one action into a map (first value of a key wins, as
// astman_get_header does); lines are bounded by the reader's buffer.
func readAction(br *bufio.Reader) (map[string]string, error) {
	m := map[string]string{}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		l := strings.TrimRight(string(line), "\r\n")
		if l == "" {
			if len(m) == 0 {
				continue
			}
			return m, nil
		}
		if len(m) > 1000 {
			return nil, errors.New("too many headers")
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if _, dup := m[k]; !dup {
			m[k] = strings.TrimSpace(v)
		}
	}
}
