package sipsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The JSON-RPC endpoint answers the htable commands as Kamailio 5.6.3's
// jsonrpcs + htable modules do (read from their source, tag 5.6.3):
//
//   - Replies: {"jsonrpc":"2.0","result":…,"id":…} with HTTP 200; faults
//     {"jsonrpc":"2.0","error":{"code":C,"message":M},"id":…} with HTTP
//     status C and reason M (C is 500, or 404 for htable.delete of a
//     missing key). The id is echoed as the request had it.
//   - Parameters are positional; the table and key must be JSON strings
//     (kamcmd's "s:200" prefix is a kamcmd convention: over JSON-RPC it
//     would be part of the key) and integers JSON numbers. A string where
//     an integer is due reads as 0, as Kamailio's SRJSON_GET_INT does.
//     Missing or mistyped strings → 500 "Not enough parameters …".
//   - htable.seti / sets T K V → "Ok. Key set to new value."; the entry's
//     expiry becomes now + the table's autoexpire (updateexpire=1).
//   - htable.setxi / setxs T K V E → same reply; expiry now + E (E ≤ 0:
//     the autoexpire).
//   - htable.setex T K E → "Ok", also for a missing key (nothing happens);
//     E ≤ 0 makes the entry never expire. A table with autoexpire 0
//     ignores it, as Kamailio does.
//   - htable.get T K → {"item":{"name","value","flags","expire"}} (flags 0
//     for integers, 2 for strings; expire "YYYY-MM-DD HH:MM:SS" local time
//     or "NEVER"); a missing or expired key → 500 "Key name doesn't exist
//     in htable.".
//   - htable.delete T K → "Ok. Key deleted." or 404 "Key not found in
//     htable.".
//   - htable.dump T → an array of {"entry","size","slot":[{"name","value",
//     "type":"int"|"str"}]}, [] when empty.
//   - An unknown table → 500 "No such htable"; an unknown method → 500
//     "Method Not Found"; a request without "jsonrpc":"2.0" or "method" →
//     200 with an empty result object (Kamailio answers so).
//
// Guesses: an unparsable body gets HTTP 500 with no body (Kamailio's
// dispatcher gives up and leaves xhttp to answer); entries are removed at
// expiry (Kamailio's timer removes them up to timer_interval later, so a
// dump there may still list an expired entry); slots are fnv(key) mod 256.

// maxCells bounds a hash table; a set beyond it fails as Kamailio's does
// when its shared memory is full.
const maxCells = 1 << 16

type cell struct {
	str       bool
	s         string
	n         int
	expiresAt time.Time // zero: never
}

type htable struct {
	autoExpire time.Duration
	cells      map[string]*cell
}

func (t *htable) sweep(now time.Time) {
	for k, c := range t.cells {
		if c.expired(now) {
			delete(t.cells, k)
		}
	}
}

func (c *cell) expired(now time.Time) bool {
	return !c.expiresAt.IsZero() && now.After(c.expiresAt)
}

func (t *htable) live(key string, now time.Time) *cell {
	c := t.cells[key]
	if c == nil || c.expired(now) {
		return nil
	}
	return c
}

// set stores a value; exp > 0 overrides the table's autoexpire.
func (t *htable) set(key string, c cell, exp int, now time.Time) {
	if t.autoExpire > 0 {
		if exp > 0 {
			c.expiresAt = now.Add(time.Duration(exp) * time.Second)
		} else {
			c.expiresAt = now.Add(t.autoExpire)
		}
	}
	t.cells[key] = &c
}

// Busy reports whether the busy table (Options.BusyTable) holds a live
// entry for ext: the condition under which the documented Kamailio snippet
// refuses calls.
func (s *Server) Busy(ext string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busyLocked(ext)
}

func (s *Server) busyLocked(ext string) bool {
	t := s.htables[s.opts.BusyTable]
	return t != nil && t.live(ext, time.Now()) != nil
}

// Invite places a call to ext through the simulated proxy and returns the
// final answer: 486 while ext is busy (its entry in the busy table exists),
// 404 for an unknown extension, else 200. Refusals are counted in
// Stats.InvitesRefused.
func (s *Server) Invite(ext string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Invites++
	defer s.signalLocked()
	if _, ok := s.exts[ext]; !ok {
		return 404
	}
	if s.busyLocked(ext) {
		s.stats.InvitesRefused++
		return 486
	}
	return 200
}

// HTableEntry returns a live entry of a hash table as text and how long it
// has left (0: never expires), for tests.
func (s *Server) HTableEntry(table, key string) (value string, left time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.htables[table]
	if t == nil {
		return "", 0, false
	}
	now := time.Now()
	c := t.live(key, now)
	if c == nil {
		return "", 0, false
	}
	if !c.expiresAt.IsZero() {
		left = c.expiresAt.Sub(now)
	}
	if c.str {
		return c.s, left, true
	}
	return strconv.Itoa(c.n), left, true
}

// SetHTableEntry stores an integer entry as `$sht(table=>key) = value` in a
// route script would (expiry = the table's autoexpire), for scripting a
// PBX-side state in tests.
func (s *Server) SetHTableEntry(table, key string, value int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.htables[table]
	if t == nil {
		return errors.New("sipsim: no hash table " + strconv.Quote(table) + " (Options.HTables)")
	}
	t.set(key, cell{n: value}, 0, time.Now())
	return nil
}

type rpcFault struct {
	code int
	msg  string
}

type rpcReply struct {
	result any
	fault  *rpcFault
}

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/RPC" && !strings.HasPrefix(r.URL.Path, "/RPC/") {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.opts.MaxBody)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.stats.RPCRequests++
	s.signalLocked()
	s.mu.Unlock()

	var req map[string]json.RawMessage
	if err := json.Unmarshal(body, &req); err != nil || req == nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	id, hasID := req["id"]
	var reply rpcReply
	version, _ := jsonString(req["jsonrpc"])
	method, okMethod := jsonString(req["method"])
	params, okParams := positional(req["params"])
	switch {
	case version != "2.0" || !okMethod || !okParams:
		reply.result = struct{}{}
	default:
		reply = s.callRPC(method, params)
	}
	writeRPC(w, reply, id, hasID)
}

func writeRPC(w http.ResponseWriter, reply rpcReply, id json.RawMessage, hasID bool) {
	var doc bytes.Buffer
	doc.WriteString(`{"jsonrpc":"2.0",`)
	status := http.StatusOK
	if reply.fault != nil {
		status = reply.fault.code
		msg, _ := json.Marshal(reply.fault.msg)
		doc.WriteString(`"error":{"code":` + strconv.Itoa(reply.fault.code) + `,"message":` + string(msg) + `}`)
	} else {
		res, _ := json.Marshal(reply.result)
		doc.WriteString(`"result":`)
		doc.Write(res)
	}
	if hasID {
		doc.WriteString(`,"id":`)
		if string(id) == "null" {
			doc.WriteString("0")
		} else {
			doc.Write(id)
		}
	}
	doc.WriteString("}")
	var pretty bytes.Buffer
	// Kamailio's jsonrpcs pretty-prints by default (pretty_format 1).
	if json.Indent(&pretty, doc.Bytes(), "", "\t") != nil {
		pretty = doc
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(pretty.Bytes())
}

// positional returns the params in order: an array's elements, or an
// object's member values in document order (Kamailio walks the children of
// either). Absent params are an empty list; anything else is not ok.
func positional(raw json.RawMessage) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, true
	}
	switch raw[0] {
	case '[':
		var out []json.RawMessage
		return out, json.Unmarshal(raw, &out) == nil
	case '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		if _, err := dec.Token(); err != nil {
			return nil, false
		}
		var out []json.RawMessage
		for dec.More() {
			if _, err := dec.Token(); err != nil { // the member name
				return nil, false
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	}
	return nil, false
}

func jsonString(raw json.RawMessage) (string, bool) {
	var v string
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// jsonInt reads an integer parameter as SRJSON_GET_INT does: the number
// truncated, anything that is not a number 0.
func jsonInt(raw json.RawMessage) int {
	var f float64
	if json.Unmarshal(raw, &f) != nil {
		return 0
	}
	return int(f)
}

// scan checks params against a Kamailio scan format of S (string) and d
// (integer) letters: it fails when a string is missing or not a string, or
// an integer is missing.
func scan(params []json.RawMessage, format string) ([]string, []int, bool) {
	var strs []string
	var ints []int
	for i, f := range format {
		if i >= len(params) {
			return nil, nil, false
		}
		switch f {
		case 'S':
			v, ok := jsonString(params[i])
			if !ok {
				return nil, nil, false
			}
			strs = append(strs, v)
		case 'd':
			ints = append(ints, jsonInt(params[i]))
		}
	}
	return strs, ints, true
}

func fault(code int, msg string) rpcReply { return rpcReply{fault: &rpcFault{code: code, msg: msg}} }

func (s *Server) callRPC(method string, params []json.RawMessage) rpcReply {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	table := func(name string) *htable { return s.htables[name] }
	const setOK = "Ok. Key set to new value."
	switch method {
	case "htable.get":
		a, _, ok := scan(params, "SS")
		if !ok {
			return fault(500, "Not enough parameters (htable name and key name)")
		}
		t := table(a[0])
		if t == nil {
			return fault(500, "No such htable")
		}
		c := t.live(a[1], now)
		if c == nil {
			return fault(500, "Key name doesn't exist in htable.")
		}
		expire := "NEVER"
		if !c.expiresAt.IsZero() {
			expire = c.expiresAt.Local().Format("2006-01-02 15:04:05")
		}
		type item struct {
			Name   string `json:"name"`
			Value  any    `json:"value"`
			Flags  int    `json:"flags"`
			Expire string `json:"expire"`
		}
		it := item{Name: a[1], Value: c.n, Flags: 0, Expire: expire}
		if c.str {
			it.Value, it.Flags = c.s, 2
		}
		return rpcReply{result: struct {
			Item item `json:"item"`
		}{it}}
	case "htable.seti", "htable.sets", "htable.setxi", "htable.setxs":
		format := map[string]string{"htable.seti": "SSd", "htable.sets": "SSS", "htable.setxi": "SSdd", "htable.setxs": "SSSd"}[method]
		a, n, ok := scan(params, format)
		if !ok {
			if len(format) == 4 {
				return fault(500, "Not enough parameters (htable name, key name, value and expire)")
			}
			return fault(500, "Not enough parameters (htable name, key name and value)")
		}
		t := table(a[0])
		if t == nil {
			if len(format) == 4 {
				// setxi/setxs go straight to the KEMI function, which
				// only logs the missing table.
				return fault(500, "Failed to set the item")
			}
			return fault(500, "No such htable")
		}
		c, exp := cell{}, 0
		switch method {
		case "htable.seti":
			c.n = n[0]
		case "htable.sets":
			c.str, c.s = true, a[2]
		case "htable.setxi":
			c.n, exp = n[0], n[1]
		case "htable.setxs":
			c.str, c.s, exp = true, a[2], n[0]
		}
		if _, exists := t.cells[a[1]]; !exists && len(t.cells) >= maxCells {
			// Kamailio's bound is its shared memory; ours keeps hostile
			// input from growing the table without end.
			return fault(500, "Failed to set the item")
		}
		t.set(a[1], c, exp, now)
		s.signalLocked()
		return rpcReply{result: setOK}
	case "htable.setex":
		a, n, ok := scan(params, "SSd")
		if !ok {
			return fault(500, "Not enough parameters (htable name, item name and expire)")
		}
		t := table(a[0])
		if t == nil {
			return fault(500, "No such htable")
		}
		if c := t.live(a[1], now); c != nil && t.autoExpire > 0 {
			if n[0] > 0 {
				c.expiresAt = now.Add(time.Duration(n[0]) * time.Second)
			} else {
				c.expiresAt = time.Time{}
			}
		}
		s.signalLocked()
		return rpcReply{result: "Ok"}
	case "htable.delete":
		a, _, ok := scan(params, "SS")
		if !ok {
			return fault(500, "Not enough parameters (htable name & key name")
		}
		t := table(a[0])
		if t == nil {
			return fault(500, "No such htable")
		}
		if t.live(a[1], now) == nil {
			return fault(404, "Key not found in htable.")
		}
		delete(t.cells, a[1])
		s.signalLocked()
		return rpcReply{result: "Ok. Key deleted."}
	case "htable.dump":
		a, _, ok := scan(params, "S")
		if !ok {
			return fault(500, "No htable name given")
		}
		t := table(a[0])
		if t == nil {
			return fault(500, "No such htable")
		}
		return rpcReply{result: dump(t, now)}
	}
	return fault(500, "Method Not Found")
}

func dump(t *htable, now time.Time) []any {
	type entry struct {
		Name  string `json:"name"`
		Value any    `json:"value"`
		Type  string `json:"type"`
	}
	type slot struct {
		Entry int     `json:"entry"`
		Size  int     `json:"size"`
		Slot  []entry `json:"slot"`
	}
	slots := map[int]*slot{}
	keys := make([]string, 0, len(t.cells))
	for k := range t.cells {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := t.cells[k]
		if c.expired(now) {
			continue
		}
		h := fnv.New32a()
		_, _ = h.Write([]byte(k))
		i := int(h.Sum32() % 256)
		sl := slots[i]
		if sl == nil {
			sl = &slot{Entry: i}
			slots[i] = sl
		}
		e := entry{Name: k, Value: c.n, Type: "int"}
		if c.str {
			e.Value, e.Type = c.s, "str"
		}
		sl.Slot = append(sl.Slot, e)
		sl.Size++
	}
	idx := make([]int, 0, len(slots))
	for i := range slots {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	out := make([]any, 0, len(idx))
	for _, i := range idx {
		out = append(out, slots[i])
	}
	return out
}
