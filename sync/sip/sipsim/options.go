package sipsim

import (
	"log/slog"
	"time"
)

// Style selects the shape of the dialog-info bodies, after the PBX a test
// wants to stand in for.
type Style int

const (
	// StyleKamailio shapes bodies like Kamailio's presence_dialoginfo fed by
	// pua_dialoginfo: one <dialog id="padi-…"> per call with call-id, tags,
	// direction and full local/remote parts, "Trying" capitalised while the
	// call is being set up, a dummy terminated dialog when idle
	// (force_dummy_dialog), every document state="full".
	StyleKamailio Style = iota
	// StyleAsterisk shapes bodies like res_pjsip_dialog_info_body_generator:
	// exactly one <dialog id="<exten>"> aggregating the extension's calls,
	// early / confirmed / terminated, call-id and tags only while ringing,
	// hold as +sip.rendering=no on the local target.
	StyleAsterisk
	// StylePartial is StyleKamailio's dialogs, but after the first NOTIFY
	// of a subscription (and of each refresh) only the changed dialog is
	// sent, in a state="partial" document, as Yealink/BroadWorks do.
	StylePartial
)

func (s Style) String() string {
	switch s {
	case StyleKamailio:
		return "kamailio"
	case StyleAsterisk:
		return "asterisk"
	case StylePartial:
		return "partial"
	}
	return "unknown"
}

// HTable is one Kamailio hash table the JSON-RPC endpoint serves, as a
// modparam("htable", "htable", "<Name>=>size=8;autoexpire=<AutoExpire>;")
// would declare it.
type HTable struct {
	Name string
	// AutoExpire is the table's autoexpire in seconds. Zero means entries
	// never expire, and then Kamailio ignores htable.setex and the expire of
	// htable.setxi: tests of the bridge's lease need a non-zero value.
	AutoExpire int
}

// Options configure a Server. The zero value is a usable simulator on a free
// 127.0.0.1 port with no extensions, no authentication, Kamailio-shaped
// bodies and a "teamsbusy" hash table with autoexpire 3600.
type Options struct {
	// Addr is the SIP address (UDP, and TCP on the same port); default
	// "127.0.0.1:0". Only loopback addresses are accepted.
	Addr string
	// RPCAddr is the address of the JSON-RPC HTTP endpoint; default
	// "127.0.0.1:0".
	RPCAddr string
	// Domain is the host part of the extensions' URIs in bodies (entity,
	// identities); default the SIP listen host, as Kamailio's loopback
	// configuration uses.
	Domain string
	// Extensions known at start; more with AddExtension.
	Extensions []string
	// Style of the dialog-info bodies.
	Style Style

	// Realm, User and Password turn on digest authentication when User is
	// set: SUBSCRIBE and PUBLISH are challenged with 407 (Proxy-
	// Authenticate), REGISTER with 401 (WWW-Authenticate), as Kamailio's
	// auth_check and Asterisk's res_pjsip do. Realm defaults to the
	// listen host.
	Realm, User, Password string

	// MaxExpires caps the Expires granted to SUBSCRIBE, REGISTER and
	// PUBLISH (Kamailio's max_expires); default 3600.
	MaxExpires int
	// DefaultExpires is granted when a request carries no Expires;
	// default 3600 (Kamailio's default_expires).
	DefaultExpires int
	// NoTCP serves UDP only.
	NoTCP bool

	// MaxBody is the largest request body accepted; a larger one is
	// answered 413. Default 16 KiB. sipgo itself drops any message over
	// 64 KiB before it reaches the simulator.
	MaxBody int

	// HTables served over JSON-RPC. Nil means one table "teamsbusy" with
	// autoexpire 3600, as in the tested reference configuration.
	HTables []HTable
	// BusyTable is the table Invite and Busy consult; default "teamsbusy".
	BusyTable string

	// NotifyTimeout bounds the wait for a NOTIFY's final answer; a NOTIFY
	// unanswered by then ends the subscription, as Kamailio's
	// timeout_rm_subs does. Default 4 s.
	NotifyTimeout time.Duration
	// SweepInterval is how often expired subscriptions, registrations,
	// publications and hash table entries are removed; default 50 ms.
	SweepInterval time.Duration

	// Logger receives diagnostic logs; default discards.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.RPCAddr == "" {
		o.RPCAddr = "127.0.0.1:0"
	}
	if o.MaxExpires <= 0 {
		o.MaxExpires = 3600
	}
	if o.DefaultExpires <= 0 {
		o.DefaultExpires = 3600
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 16 << 10
	}
	if o.HTables == nil {
		o.HTables = []HTable{{Name: "teamsbusy", AutoExpire: 3600}}
	}
	if o.BusyTable == "" {
		o.BusyTable = "teamsbusy"
	}
	if o.NotifyTimeout <= 0 {
		o.NotifyTimeout = 4 * time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 50 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
