package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Paths the Endpoint serves the Receiver on. Graph validates each URL separately, so using
// two paths keeps the delivery logs on both sides readable; the Receiver treats them alike.
const (
	NotifyPath    = "/notify"
	LifecyclePath = "/lifecycle"
)

// Endpoint is a Receiver served on a listener.
type Endpoint struct {
	srv  *http.Server
	ln   *limitListener
	url  string
	done chan struct{}
}

// ServeTLS serves r on ln with cert (Graph requires https notification URLs) until Close or
// Shutdown. Only NotifyPath and LifecyclePath are answered; everything else is 404.
func (r *Receiver) ServeTLS(ln net.Listener, cert tls.Certificate) *Endpoint {
	return r.serve(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

// Serve serves r over plain HTTP on ln, for a reverse proxy that terminates TLS in front of
// it, with the same limits as ServeTLS.
func (r *Receiver) Serve(ln net.Listener) *Endpoint { return r.serve(ln, nil) }

func (r *Receiver) serve(ln net.Listener, tlsCfg *tls.Config) *Endpoint {
	mux := http.NewServeMux()
	mux.Handle(NotifyPath, r)
	mux.Handle(LifecyclePath, r)
	scheme := "http://"
	if tlsCfg != nil {
		scheme = "https://"
	}
	lim := newLimitListener(ln, connectionLimit(r.cfg.MaxConnections, openFileLimit()))
	e := &Endpoint{
		url:  scheme + ln.Addr().String(),
		ln:   lim,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler: mux,
			// Timeouts bound what a slow or hostile client can hold; Graph itself sends a
			// small body and waits at most a few seconds for the answer. The TLS handshake
			// is bounded by the shortest of them.
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			TLSConfig:         tlsCfg,
			HTTP2: &http.HTTP2Config{
				MaxConcurrentStreams: r.cfg.MaxStreamsPerConn,
				// Flow-control windows are what a client may make the server buffer
				// before a handler reads: Go's default is 1 MiB per connection.
				MaxReceiveBufferPerConnection: 256 << 10,
				MaxReceiveBufferPerStream:     128 << 10,
			},
			ConnState: lim.connState,
			// TLS handshake failures from scanners are noise: debug level.
			ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(e.done)
		var err error
		if tlsCfg != nil {
			err = e.srv.ServeTLS(lim, "", "")
		} else {
			err = e.srv.Serve(lim)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("webhook endpoint stopped", "err", err)
		}
	}()
	return e
}

// URL is the endpoint's base URL, https://host:port of the listener (http:// for Serve).
func (e *Endpoint) URL() string { return e.url }

// NotificationURL is the subscription's notificationUrl.
func (e *Endpoint) NotificationURL() string { return e.url + NotifyPath }

// LifecycleURL is the subscription's lifecycleNotificationUrl.
func (e *Endpoint) LifecycleURL() string { return e.url + LifecyclePath }

// Conns is the number of connections the endpoint holds open (at most MaxConnections).
func (e *Endpoint) Conns() int { return len(e.ln.slots) }

// Shutdown stops accepting and waits for in-flight requests (bounded by ctx).
func (e *Endpoint) Shutdown(ctx context.Context) error {
	err := e.srv.Shutdown(ctx)
	<-e.done
	return err
}

// Close stops the endpoint at once.
func (e *Endpoint) Close() error {
	err := e.srv.Close()
	<-e.done
	return err
}
