package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/presencebridge/presencebridge/store"
	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/teams"
)

// AdapterOptions is what the environment adds to the stored settings. The
// service runs with none; demo points the adapters at its simulators.
type AdapterOptions struct {
	TeamsHTTPClient *http.Client     // trusts the Graph simulator's CA
	WebhookListener net.Listener     // instead of teams.webhook_listen
	WebhookCert     *tls.Certificate // instead of the PEM files
	PhoneRootCAs    *x509.CertPool   // a UCServer with its own CA
}

// RealAdapters is the factory of the real sides: the Microsoft Graph
// adapter and the phone-system connector named by phone.system, both built
// from the stored settings.
func RealAdapters(o AdapterOptions) AdapterFactory {
	build := RealRebuilders(o)
	return func(ctx context.Context, env AdapterEnv) (Adapters, error) {
		if err := CheckRun(env.DB); err != nil {
			return Adapters{}, err
		}
		tc, err := build.Teams(ctx, env)
		if err != nil {
			return Adapters{}, err
		}
		phone, err := build.Phone(ctx, env)
		if err != nil {
			closeSide(tc)
			return Adapters{}, err
		}
		return Adapters{
			Teams: tc, Phone: phone, SignIn: tc.(SignInStarter),
			Close: func() error { return errors.Join(closeSide(phone), closeSide(tc)) },
		}, nil
	}
}

// Rebuilders build one side anew from the stored settings, so that a
// change of how a side connects applies while the bridge runs. An adapter
// that holds resources implements io.Closer; the daemon closes it when it
// is replaced or stopped.
type Rebuilders struct {
	Teams func(ctx context.Context, env AdapterEnv) (psync.Teams, error)
	Phone func(ctx context.Context, env AdapterEnv) (psync.PhoneSystem, error)
}

// RealRebuilders builds the real sides, one at a time.
func RealRebuilders(o AdapterOptions) Rebuilders {
	return Rebuilders{
		Teams: func(_ context.Context, env AdapterEnv) (psync.Teams, error) {
			tcfg, err := teams.ConfigFromSettings(teamsSettings(env.Settings))
			if err != nil {
				return nil, err
			}
			tcfg.Logger, tcfg.Meter, tcfg.Store = env.Logger, env.Meter, storePersistence{env.DB}
			tcfg.HTTPClient, tcfg.WebhookListener, tcfg.WebhookCert = o.TeamsHTTPClient, o.WebhookListener, o.WebhookCert
			tc, err := teams.New(tcfg)
			if err != nil {
				return nil, err
			}
			return tc, nil
		},
		Phone: func(_ context.Context, env AdapterEnv) (psync.PhoneSystem, error) {
			p, err := phoneSystemOf(env.Settings)
			if err != nil {
				return nil, err
			}
			return p.build(env, o)
		},
	}
}

// closeSide closes an adapter that holds resources.
func closeSide(a any) error {
	if c, ok := a.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// StorePersistence is the store as the Teams adapter keeps its state in it.
func StorePersistence(db *store.DB) teams.Persistence { return storePersistence{db} }

// storePersistence is the store as the Teams adapter keeps its state in it.
type storePersistence struct{ db *store.DB }

func (p storePersistence) Subscriptions() ([]teams.Subscription, error) {
	ss, err := p.db.Subscriptions()
	out := make([]teams.Subscription, 0, len(ss))
	for _, s := range ss {
		out = append(out, teams.Subscription{ID: s.ID, Account: s.Account, ClientState: s.ClientState, UserIDs: s.UserIDs, NotifyURL: s.NotifyURL, Expires: s.Expires, Created: s.Created})
	}
	return out, err
}

func (p storePersistence) PutSubscription(s teams.Subscription) error {
	return p.db.PutSubscription(store.Subscription{ID: s.ID, Resource: "communications/presences", Account: s.Account, ClientState: s.ClientState,
		UserIDs: s.UserIDs, NotifyURL: s.NotifyURL, Expires: s.Expires, Created: s.Created})
}

func (p storePersistence) DeleteSubscription(id string) error  { return p.db.DeleteSubscription(id) }
func (p storePersistence) TokenCache(a string) ([]byte, error) { return p.db.TokenCache(a) }
func (p storePersistence) PutTokenCache(a string, d []byte) error {
	return p.db.PutTokenCache(a, d)
}
func (p storePersistence) EncryptionCert() ([]byte, error)    { return p.db.EncryptionCert() }
func (p storePersistence) PutEncryptionCert(pem []byte) error { return p.db.PutEncryptionCert(pem) }
