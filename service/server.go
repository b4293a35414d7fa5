package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
)

// The control API: JSON over HTTP on a local Unix socket, under /v1.
//
//	GET    /v1/status                 psync.Overview
//	GET    /v1/health                 Health (503 when a side or the engine is down)
//	GET    /v1/database               DatabaseInfo: the database the service runs on
//	GET    /v1/users                  []psync.UserStatus (live)
//	GET    /v1/users/{id}             psync.UserStatus
//	GET    /v1/users/{id}/history     []psync.Decision, newest first (?limit=N)
//	PUT    /v1/users/{id}/profile     {"profile": "name"} ("" = the default)
//	GET    /v1/profiles               []psync.Profile
//	POST   /v1/profiles               psync.Profile: create (409 when it exists)
//	PUT    /v1/profiles/{name}        psync.Profile: create or replace
//	DELETE /v1/profiles/{name}
//	POST   /v1/profiles/{name}/rename {"name": "new"}
//	GET    /v1/settings               []psync.SettingValue (secrets masked)
//	PUT    /v1/settings/{key}         {"value": "..."}
//	POST   /v1/settings               {"set": {"key": "value", ...}}: one change, checked
//	                                  together -> {"cleared": [...]}, the secrets it cleared
//	DELETE /v1/settings/{key}
//	GET    /v1/config/{key}           {"key": ..., "value": ...}: a setting (masked),
//	                                  profile.NAME.FLAG or user.ID.FIELD
//	PUT    /v1/config/{key}           {"value": "..."}
//	DELETE /v1/config/{key}           back to the default
//	GET    /v1/config/export          the configuration as YAML, secrets masked
//	POST   /v1/config/import          YAML body (?merge=true, ?dry_run=true) -> store.Changes
//	POST   /v1/config/import-group    {"group": "entra group id"} -> GroupImport
//	GET    /v1/config/users           []psync.User, the configured users
//	POST   /v1/config/users           psync.User: add (409 when the id exists)
//	GET    /v1/config/users/{id}      psync.User
//	PUT    /v1/config/users/{id}      psync.User: replace an existing user
//	DELETE /v1/config/users/{id}      remove, after releasing what the bridge holds
//	GET    /v1/audit                  []psync.Decision, newest first (?limit=N)
//	GET    /v1/events                 newline-delimited JSON psync.Decision, live
//	POST   /v1/doctor                 newline-delimited JSON: {"check": DoctorCheck}
//	                                  per check as it completes, then {"done": {}}
//	                                  or {"done": {"error": ..., "code": ...}}
//	POST   /v1/signin                 {"account": "upn"} -> psync.SignInPrompt
//
// Errors are {"error": "message", "code": "not_found"} with the status of
// their kind (errorStatus); the code names the kind (errors.go).

// maxBody bounds a request body: the largest is a profile, a few hundred
// bytes; a configuration to import may be larger (10,000 users).
const (
	maxBody       = 64 << 10
	maxImportBody = 16 << 20
)

// Health is the answer of /v1/health.
type Health struct {
	OK     bool   `json:"ok"`
	Engine bool   `json:"engine"`
	Teams  bool   `json:"teams"`
	Phone  bool   `json:"phone"`
	Detail string `json:"detail,omitempty"`
}

// ServerConfig is what a Server is built from.
type ServerConfig struct {
	Local *Local
	// Policy decides who may call; nil lets every peer that can open the
	// socket in (tests, and OSes without peer credentials).
	Policy *PeerPolicy
	Logger *slog.Logger
}

// Server serves the control API.
type Server struct {
	local  *Local
	policy *PeerPolicy
	log    *slog.Logger
	http   *http.Server
}

type peerKey struct{}

type peerInfo struct {
	peer Peer
	err  error
}

// NewServer returns a server; Serve starts it on a listener.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Local == nil {
		return nil, errors.New("service: the control server needs a Local")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{local: cfg.Local, policy: cfg.Policy, log: cfg.Logger.With("component", "control")}
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		// No WriteTimeout: /v1/events streams for as long as the client stays.
		IdleTimeout: time.Minute,
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			p, err := peerOf(c)
			return context.WithValue(ctx, peerKey{}, peerInfo{p, err})
		},
	}
	return s, nil
}

// Serve answers requests on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops taking connections and waits for running requests until
// ctx ends, then closes what is left (live event streams).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	return err
}

// Handler is the API with the peer check. The peer is identified when the
// connection is accepted (ConnContext of the Server's own http.Server), so
// with a policy, requests served any other way are refused.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	get := func(path string, h func(r *http.Request) (any, error)) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			v, err := h(r)
			s.reply(w, r, v, err)
		})
	}
	do := func(method, path string, h func(r *http.Request) error) {
		mux.HandleFunc(method+" "+path, func(w http.ResponseWriter, r *http.Request) {
			s.reply(w, r, nil, h(r))
		})
	}
	l := s.local
	get("/v1/status", func(r *http.Request) (any, error) { return l.Overview(r.Context()) })
	mux.HandleFunc("GET /v1/health", s.health)
	get("/v1/database", func(r *http.Request) (any, error) { return l.Database(r.Context()) })
	get("/v1/users", func(r *http.Request) (any, error) { return l.Users(r.Context()) })
	get("/v1/users/{id}", func(r *http.Request) (any, error) {
		return l.User(r.Context(), psync.UserID(r.PathValue("id")))
	})
	get("/v1/users/{id}/history", func(r *http.Request) (any, error) {
		n, err := limitParam(r)
		if err != nil {
			return nil, err
		}
		return l.History(r.Context(), psync.UserID(r.PathValue("id")), n)
	})
	do("PUT", "/v1/users/{id}/profile", func(r *http.Request) error {
		var body struct {
			Profile *string `json:"profile"`
		}
		if err := decode(r, &body); err != nil {
			return err
		}
		if body.Profile == nil {
			return errorf(ErrInvalid, `the body needs "profile" (use "" for the default profile)`)
		}
		return l.AssignProfile(r.Context(), psync.UserID(r.PathValue("id")), *body.Profile)
	})
	get("/v1/profiles", func(r *http.Request) (any, error) { return l.Profiles(r.Context()) })
	do("POST", "/v1/profiles", func(r *http.Request) error {
		var p psync.Profile
		if err := decode(r, &p); err != nil {
			return err
		}
		return l.AddProfile(r.Context(), p)
	})
	do("PUT", "/v1/profiles/{name}", func(r *http.Request) error {
		var p psync.Profile
		if err := decode(r, &p); err != nil {
			return err
		}
		name := r.PathValue("name")
		if p.Name == "" {
			p.Name = name
		}
		if p.Name != name {
			return errorf(ErrInvalid, "the body names profile %q but the path %q; to rename: POST /v1/profiles/%s/rename", clip(p.Name), clip(name), clip(name))
		}
		return l.PutProfile(r.Context(), p)
	})
	do("DELETE", "/v1/profiles/{name}", func(r *http.Request) error {
		return l.DeleteProfile(r.Context(), r.PathValue("name"))
	})
	do("POST", "/v1/profiles/{name}/rename", func(r *http.Request) error {
		var body struct {
			Name *string `json:"name"`
		}
		if err := decode(r, &body); err != nil {
			return err
		}
		if body.Name == nil {
			return errorf(ErrInvalid, `the body needs "name", the new name`)
		}
		return l.RenameProfile(r.Context(), r.PathValue("name"), *body.Name)
	})
	get("/v1/settings", func(r *http.Request) (any, error) { return l.Settings(r.Context()) })
	do("PUT", "/v1/settings/{key}", func(r *http.Request) error {
		v, err := valueBody(r)
		if err != nil {
			return err
		}
		return l.SetSetting(r.Context(), r.PathValue("key"), v)
	})
	mux.HandleFunc("POST /v1/settings", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Set map[string]string `json:"set"`
		}
		if err := decode(r, &body); err != nil {
			s.reply(w, r, nil, err)
			return
		}
		cleared, err := l.SetSettings(r.Context(), body.Set)
		s.reply(w, r, settingsChange{Cleared: cleared}, err)
	})
	do("DELETE", "/v1/settings/{key}", func(r *http.Request) error {
		return l.UnsetSetting(r.Context(), r.PathValue("key"))
	})
	get("/v1/config/{key}", func(r *http.Request) (any, error) {
		key := r.PathValue("key")
		v, err := l.Get(r.Context(), key)
		if err != nil {
			return nil, err
		}
		return configValue{Key: key, Value: v}, nil
	})
	do("PUT", "/v1/config/{key}", func(r *http.Request) error {
		v, err := valueBody(r)
		if err != nil {
			return err
		}
		return l.Set(r.Context(), r.PathValue("key"), v)
	})
	do("DELETE", "/v1/config/{key}", func(r *http.Request) error {
		return l.Unset(r.Context(), r.PathValue("key"))
	})
	mux.HandleFunc("GET /v1/config/export", func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		if err := l.Export(r.Context(), &buf); err != nil {
			s.reply(w, r, nil, err)
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(buf.Bytes())
	})
	mux.HandleFunc("POST /v1/config/import", func(w http.ResponseWriter, r *http.Request) {
		var o store.ImportOptions
		var err error
		if o.Merge, err = boolParam(r, "merge"); err == nil {
			o.DryRun, err = boolParam(r, "dry_run")
		}
		if err != nil {
			s.reply(w, r, nil, err)
			return
		}
		body := http.MaxBytesReader(w, r.Body, maxImportBody)
		ch, err := l.Import(r.Context(), body, o)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = errorf(ErrTooLarge, "the configuration is larger than %d MiB", maxImportBody>>20)
		}
		s.reply(w, r, ch, err)
	})
	get("/v1/config/users", func(r *http.Request) (any, error) { return l.ConfiguredUsers(r.Context()) })
	get("/v1/config/users/{id}", func(r *http.Request) (any, error) {
		return l.ConfiguredUser(r.Context(), psync.UserID(r.PathValue("id")))
	})
	do("POST", "/v1/config/users", func(r *http.Request) error {
		var u psync.User
		if err := decode(r, &u); err != nil {
			return err
		}
		return l.AddUser(r.Context(), u)
	})
	do("PUT", "/v1/config/users/{id}", func(r *http.Request) error {
		var u psync.User
		if err := decode(r, &u); err != nil {
			return err
		}
		id := psync.UserID(r.PathValue("id"))
		if u.ID == "" {
			u.ID = id
		}
		if u.ID != id {
			return errorf(ErrInvalid, "the body names user %q but the path %q; a user's id cannot change (remove the user and add the new id)", clip(string(u.ID)), clip(string(id)))
		}
		return l.UpdateUser(r.Context(), u)
	})
	do("DELETE", "/v1/config/users/{id}", func(r *http.Request) error {
		return l.RemoveUser(r.Context(), psync.UserID(r.PathValue("id")))
	})
	mux.HandleFunc("POST /v1/config/import-group", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Group string `json:"group"`
		}
		if err := decode(r, &body); err != nil {
			s.reply(w, r, nil, err)
			return
		}
		g, err := l.ImportGroup(r.Context(), body.Group)
		s.reply(w, r, g, err)
	})
	get("/v1/audit", func(r *http.Request) (any, error) {
		n, err := limitParam(r)
		if err != nil {
			return nil, err
		}
		return l.Audit(r.Context(), n)
	})
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("POST /v1/doctor", s.doctor)
	mux.HandleFunc("POST /v1/signin", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Account string `json:"account"`
		}
		if err := decode(r, &body); err != nil {
			s.reply(w, r, nil, err)
			return
		}
		p, err := l.StartSignIn(r.Context(), body.Account)
		s.reply(w, r, p, err)
	})
	return s.guard(notMatched(mux))
}

// settingsChange is the answer of POST /v1/settings.
type settingsChange struct {
	Cleared []string `json:"cleared"`
}

// configValue is the answer of GET /v1/config/{key}.
type configValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func valueBody(r *http.Request) (string, error) {
	var body struct {
		Value *string `json:"value"`
	}
	if err := decode(r, &body); err != nil {
		return "", err
	}
	if body.Value == nil {
		return "", errorf(ErrInvalid, `the body needs "value" (DELETE the key to return it to its default)`)
	}
	return *body.Value, nil
}

// notMatched answers what the mux has no route for with JSON: 405 when the
// path exists for another method, 404 otherwise.
func notMatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path), Code: "invalid"})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no such endpoint %s (the API lives under /v1)", r.URL.Path), Code: "not_found"})
	})
}

// guard lets only allowed peers through; refusals are logged.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.policy != nil {
			pi, ok := r.Context().Value(peerKey{}).(peerInfo)
			switch {
			case !ok:
				// Served by some other http.Server than ours: nobody
				// asked the kernel who is calling.
				s.log.Warn("control API: request without peer information; refused", "method", r.Method, "path", r.URL.Path)
				writeJSON(w, http.StatusForbidden, errorBody{Error: "the control API answers only on its own socket", Code: "forbidden"})
				return
			case pi.err != nil:
				s.log.Warn("control API: cannot identify the caller; refused", "err", pi.err, "method", r.Method, "path", r.URL.Path)
				writeJSON(w, http.StatusForbidden, errorBody{Error: "cannot identify the calling process: " + pi.err.Error(), Code: "forbidden"})
				return
			case !s.policy.Allows(pi.peer):
				s.log.Warn("control API: caller refused", "peer", pi.peer.String(), "method", r.Method, "path", r.URL.Path)
				writeJSON(w, http.StatusForbidden, errorBody{Error: fmt.Sprintf(
					"uid %d may not use the presencebridge control API: run as root or as a member of the admin group", pi.peer.UID), Code: "forbidden"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		st := errorStatus(err)
		if st == http.StatusInternalServerError {
			s.log.Error("control API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeJSON(w, st, errorBody{Error: err.Error(), Code: codeOf(err)})
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// errorBody is every error answer of the API.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// errorStatus is the one place where a kind of error becomes an HTTP
// status (the Client maps it back with statusKind).
func errorStatus(err error) int {
	switch {
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrConflict), errors.Is(err, ErrHoldsKept):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotConfigured):
		return http.StatusNotImplemented
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decode reads one JSON object of at most maxBody bytes with no unknown
// fields.
func decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return errorf(ErrTooLarge, "the request body is larger than %d bytes", maxBody)
		case errors.Is(err, io.EOF):
			return errorf(ErrInvalid, "the request body is empty; send a JSON object")
		}
		return errorf(ErrInvalid, "the request body is not valid JSON for this endpoint: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errorf(ErrInvalid, "the request body holds more than one JSON value")
	}
	return nil
}

func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxAuditLimit {
		return 0, errorf(ErrInvalid, "limit must be a whole number from 1 to %d, not %q", MaxAuditLimit, clip(v))
	}
	return n, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(ErrInvalid, "%s must be true or false, not %q", name, clip(v))
	}
	return b, nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	st, err := s.local.cfg.Engine.Status(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Health{Detail: "the engine is not running"})
		return
	}
	h := Health{Engine: !st.Stopping, Teams: st.Teams.Healthy, Phone: st.Phone.Healthy}
	h.OK = h.Engine && h.Teams && h.Phone
	var bad []string
	if !h.Teams {
		bad = append(bad, "teams: "+orUnknown(st.Teams))
	}
	if !h.Phone {
		bad = append(bad, "phone: "+orUnknown(st.Phone))
	}
	if st.Stopping {
		bad = append(bad, "the engine is stopping")
	}
	h.Detail = strings.Join(bad, "; ")
	code := http.StatusOK
	if !h.OK {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, h)
}

func orUnknown(h psync.SideHealth) string {
	switch {
	case !h.Known:
		return "not connected yet"
	case h.Detail != "":
		return h.Detail
	}
	return "unhealthy"
}

// events streams decisions as newline-delimited JSON until the client goes
// away or the hub closes (shutdown).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "streaming is not supported on this connection", Code: "internal"})
		return
	}
	ch, err := s.local.Events(r.Context())
	if err != nil {
		s.reply(w, r, nil, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	enc := json.NewEncoder(w)
	for d := range ch {
		if err := enc.Encode(d); err != nil {
			return // the client left; Local.Events ends the subscription with r.Context()
		}
		if len(ch) == 0 {
			fl.Flush()
		}
	}
}

// doctorLine is one line of POST /v1/doctor: a check, or the end.
type doctorLine struct {
	Check *psync.Check `json:"check,omitempty"`
	Done  *doctorDone  `json:"done,omitempty"`
}

type doctorDone struct {
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}

// doctor streams the checks as they complete, then a last line that says
// the run is over (and how), so that a client can tell a finished run from
// a service that went away.
func (s *Server) doctor(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "streaming is not supported on this connection", Code: "internal"})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	var mu sync.Mutex
	over := false
	enc := json.NewEncoder(w)
	err := s.local.Doctor(r.Context(), func(c psync.Check) {
		mu.Lock()
		defer mu.Unlock()
		if over {
			return // a straggler after the run; the response is finished
		}
		if enc.Encode(doctorLine{Check: &c}) == nil {
			fl.Flush()
		}
	})
	mu.Lock()
	defer mu.Unlock()
	over = true
	done := doctorDone{}
	if err != nil {
		done = doctorDone{Error: err.Error(), Code: codeOf(err)}
	}
	_ = enc.Encode(doctorLine{Done: &done})
}
