package service

import (
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
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
)

// The control API: JSON over HTTP on a local Unix socket, under /v1.
//
//	GET    /v1/status                 psync.Overview
//	GET    /v1/health                 Health (503 when a side or the engine is down)
//	GET    /v1/users                  []psync.UserStatus
//	GET    /v1/users/{id}             psync.UserStatus
//	GET    /v1/users/{id}/history     []psync.Decision, newest first (?limit=N)
//	PUT    /v1/users/{id}/profile     {"profile": "name"} ("" = the default)
//	GET    /v1/profiles               []psync.Profile
//	PUT    /v1/profiles/{name}        psync.Profile
//	DELETE /v1/profiles/{name}
//	GET    /v1/settings               []psync.SettingValue (secrets masked)
//	PUT    /v1/settings/{key}         {"value": "..."}
//	DELETE /v1/settings/{key}
//	GET    /v1/audit                  []psync.Decision, newest first (?limit=N)
//	GET    /v1/events                 newline-delimited JSON psync.Decision, live
//	POST   /v1/signin                 {"account": "upn"} -> psync.SignInPrompt
//
// Errors are {"error": "..."} with a fitting status.

// maxBody bounds a request body: the largest is a profile, a few hundred bytes.
const maxBody = 64 << 10

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
	get("/v1/status", func(r *http.Request) (any, error) { return s.local.Overview(r.Context()) })
	mux.HandleFunc("GET /v1/health", s.health)
	get("/v1/users", func(r *http.Request) (any, error) { return s.local.Users(r.Context()) })
	get("/v1/users/{id}", func(r *http.Request) (any, error) {
		return s.local.User(r.Context(), psync.UserID(r.PathValue("id")))
	})
	get("/v1/users/{id}/history", func(r *http.Request) (any, error) {
		n, err := limitParam(r)
		if err != nil {
			return nil, err
		}
		return s.local.History(r.Context(), psync.UserID(r.PathValue("id")), n)
	})
	do("PUT", "/v1/users/{id}/profile", func(r *http.Request) error {
		var body struct {
			Profile *string `json:"profile"`
		}
		if err := decode(r, &body); err != nil {
			return err
		}
		if body.Profile == nil {
			return statusErr(http.StatusBadRequest, `the body needs "profile" (use "" for the default profile)`)
		}
		return s.local.AssignProfile(r.Context(), psync.UserID(r.PathValue("id")), *body.Profile)
	})
	get("/v1/profiles", func(r *http.Request) (any, error) { return s.local.Profiles(r.Context()) })
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
			return statusErr(http.StatusBadRequest, "the body names profile %q but the path %q; rename by creating the new one and deleting the old", p.Name, name)
		}
		return s.local.PutProfile(r.Context(), p)
	})
	do("DELETE", "/v1/profiles/{name}", func(r *http.Request) error {
		return s.local.DeleteProfile(r.Context(), r.PathValue("name"))
	})
	get("/v1/settings", func(r *http.Request) (any, error) { return s.local.Settings(r.Context()) })
	do("PUT", "/v1/settings/{key}", func(r *http.Request) error {
		var body struct {
			Value *string `json:"value"`
		}
		if err := decode(r, &body); err != nil {
			return err
		}
		if body.Value == nil {
			return statusErr(http.StatusBadRequest, `the body needs "value" (DELETE the setting to return it to its default)`)
		}
		return s.local.SetSetting(r.Context(), r.PathValue("key"), *body.Value)
	})
	do("DELETE", "/v1/settings/{key}", func(r *http.Request) error {
		return s.local.UnsetSetting(r.Context(), r.PathValue("key"))
	})
	get("/v1/audit", func(r *http.Request) (any, error) {
		n, err := limitParam(r)
		if err != nil {
			return nil, err
		}
		return s.local.Audit(r.Context(), n)
	})
	mux.HandleFunc("GET /v1/events", s.events)
	mux.HandleFunc("POST /v1/signin", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Account string `json:"account"`
		}
		if err := decode(r, &body); err != nil {
			s.reply(w, r, nil, err)
			return
		}
		p, err := s.local.StartSignIn(r.Context(), body.Account)
		s.reply(w, r, p, err)
	})
	// Without a method the patterns below catch what the ones above do not
	// take, so a wrong method or path still gets a JSON answer.
	for _, p := range []string{"/v1/status", "/v1/health", "/v1/users", "/v1/users/{id}", "/v1/users/{id}/history",
		"/v1/users/{id}/profile", "/v1/profiles", "/v1/profiles/{name}", "/v1/settings", "/v1/settings/{key}",
		"/v1/audit", "/v1/events", "/v1/signin"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no such endpoint %s (the API lives under /v1)", r.URL.Path)})
	})
	return s.guard(mux)
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
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "the control API answers only on its own socket"})
				return
			case pi.err != nil:
				s.log.Warn("control API: cannot identify the caller; refused", "err", pi.err, "method", r.Method, "path", r.URL.Path)
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "cannot identify the calling process: " + pi.err.Error()})
				return
			case !s.policy.Allows(pi.peer):
				s.log.Warn("control API: caller refused", "peer", pi.peer.String(), "method", r.Method, "path", r.URL.Path)
				writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf(
					"uid %d may not use the presencebridge control API: run as root or as a member of the admin group", pi.peer.UID)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		st := statusOf(err)
		if st >= 500 && st != http.StatusNotImplemented && st != http.StatusServiceUnavailable {
			s.log.Error("control API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeJSON(w, st, map[string]string{"error": err.Error()})
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, v)
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
			return statusErr(http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", maxBody)
		case errors.Is(err, io.EOF):
			return statusErr(http.StatusBadRequest, "the request body is empty; send a JSON object")
		}
		return statusErr(http.StatusBadRequest, "the request body is not valid JSON for this endpoint: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return statusErr(http.StatusBadRequest, "the request body holds more than one JSON value")
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
		return 0, statusErr(http.StatusBadRequest, "limit must be a whole number from 1 to %d, not %q", MaxAuditLimit, v)
	}
	return n, nil
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
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "streaming is not supported on this connection"})
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
