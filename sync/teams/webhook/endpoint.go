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

// Endpoint is a Receiver served over HTTPS on a listener.
type Endpoint struct {
	srv  *http.Server
	url  string
	done chan struct{}
}

// ServeTLS serves r on ln with cert (Graph requires https notification URLs) until Close or
// Shutdown. Only NotifyPath and LifecyclePath are answered; everything else is 404.
func (r *Receiver) ServeTLS(ln net.Listener, cert tls.Certificate) *Endpoint {
	mux := http.NewServeMux()
	mux.Handle(NotifyPath, r)
	mux.Handle(LifecyclePath, r)
	e := &Endpoint{
		url:  "https://" + ln.Addr().String(),
		done: make(chan struct{}),
		srv: &http.Server{
			Handler: mux,
			// Timeouts bound what a slow or hostile client can hold; Graph itself sends a
			// small body and waits at most a few seconds for the answer.
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
			// TLS handshake failures from scanners are noise: debug level.
			ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		},
	}
	go func() {
		defer close(e.done)
		if err := e.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("webhook endpoint stopped", "err", err)
		}
	}()
	return e
}

// URL is the endpoint's base URL, https://host:port of the listener.
func (e *Endpoint) URL() string { return e.url }

// NotificationURL is the subscription's notificationUrl.
func (e *Endpoint) NotificationURL() string { return e.url + NotifyPath }

// LifecycleURL is the subscription's lifecycleNotificationUrl.
func (e *Endpoint) LifecycleURL() string { return e.url + LifecyclePath }

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
