// Package sip is the standard SIP phone-system connector: it reads each
// extension's calls from RFC 4235 dialog subscriptions (BLF), publishes the
// bridge's presence as PIDF/RPID (RFC 3903), and turns call protection on and
// off through a Kamailio front proxy's htable where one is configured.
// It owns its subscription and publication state machines: sipgo has none
// for SUBSCRIBE or PUBLISH.
package sip
