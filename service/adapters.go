package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/presencebridge/presencebridge/store"
	"github.com/presencebridge/presencebridge/sync/teams"
	"github.com/presencebridge/presencebridge/sync/ucserver"
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
	return func(ctx context.Context, env AdapterEnv) (Adapters, error) {
		if err := CheckRun(env.DB); err != nil {
			return Adapters{}, err
		}
		tcfg, err := teams.ConfigFromSettings(teamsSettings(env.Settings))
		if err != nil {
			return Adapters{}, err
		}
		tcfg.Logger, tcfg.Meter, tcfg.Store = env.Logger, env.Meter, storePersistence{env.DB}
		tcfg.HTTPClient, tcfg.WebhookListener, tcfg.WebhookCert = o.TeamsHTTPClient, o.WebhookListener, o.WebhookCert
		tc, err := teams.New(tcfg)
		if err != nil {
			return Adapters{}, err
		}
		var phone *ucserver.Conn
		switch sys := env.Settings["phone.system"]; sys {
		case "ucserver":
			cfg := ucserverConfig(env.Settings, o)
			cfg.Logger, cfg.Meter = env.Logger, env.Meter
			phone, err = ucserver.New(cfg)
		case "":
			err = errors.New("phone.system is not set: `presencebridge config set phone.system ucserver`")
		default:
			err = fmt.Errorf("phone.system %q is not a phone system this build knows", sys)
		}
		if err != nil {
			tc.Close()
			return Adapters{}, err
		}
		return Adapters{
			Teams: tc, Phone: phone, SignIn: tc,
			Close: func() error { return errors.Join(phone.Close(), tc.Close()) },
		}, nil
	}
}

// ucserverConfig is the UCServer connector's configuration from the
// stored settings.
func ucserverConfig(values map[string]string, o AdapterOptions) ucserver.Config {
	return ucserver.Config{
		URL: values["ucserver.url"], UCSID: orDefault(values["ucserver.ucsid"], "local"),
		User: values["ucserver.user"], Password: values["ucserver.password"],
		RootCAs: o.PhoneRootCAs,
	}
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
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
