// Package ucserver is the estos UCServer connector: it implements the
// engine's psync.PhoneSystem port over the UCServer client protocol (JSON
// ROSE over a WebSocket session, /work/shared/docs/ucserver-protocol.md),
// on premises (web service on 7224/7225, ucsid "local") and through
// UCConnect (controller lookup, then the UCWeb proxy).
//
// It owns one session of the bridge's service account at a time: login
// with createsession, the WebSocket, a keep-alive event every 5 s, invoke
// timeouts, and on any loss a new session with everything subscribed again
// (presence of every user, a monitor on every line of theirs) followed by a
// fresh snapshot per user, so that nothing that changed during the gap is
// lost. It turns server events into engine events in the order the server
// sent them, with a per-user Version that keeps growing across sessions.
//
// Mapping: a user is a UCServer contact (psync.User.ID = contact id, e.g.
// sip:anna@example.com); a device is one of the user's phone lines (device
// id = line URI, e.g. tel:+4989123-10); the user's presence is the manual
// absent state; calls come from the line monitors (per device), and from
// presence for lines that cannot be monitored. The bridge writes the absent
// state (with stTimeTo as its lease) and line DND (which has no expiry, so
// the engine lists it as held by the bridge).
//
// # Guesses
//
// Where the brief (§6) says the real server's behaviour is not public, the
// connector relies on the same guess as the simulator ucsim; each is marked
// "Guess" once in the code:
//
//  1. createsession is a POST with the negotiate body and X-no401 for
//     UCConnect as well as on premises (session.go).
//  2. asnCtiEnumPhoneLines with typeofLines 1 lists the lines a service
//     account may monitor (conn.go).
//  3. seqSubscribedPresence lists only contacts that could be subscribed;
//     the others are reported as not known (state.go).
//  4. AsnPresenceCallV2.iAction 1 means "removed" (state.go).
//  5. The server drops an absent state at its stTimeTo by itself and says
//     so in an event, which makes stTimeTo a lease (apply.go).
//  6. asnTransportKeepAlive every 5 s keeps a session alive; the server's
//     timeout is not published (conn.go).
//  7. A contact id is "sip:" plus the e-mail (ContactIDForEmail).
//  8. iEventFlagsToSubscribe 0 subscribes to no events (directory.go).
//  9. bConferenceCtlr of a call stays set while the conference is on hold
//     (state.go), so a held conference is known as one, also to a bridge
//     that starts while it is held.
//
// Credentials (password, login token, the Basic header, session ids) never
// appear in logs, errors or reports: session ids are shortened, and errors
// from the network are scrubbed.
package ucserver
