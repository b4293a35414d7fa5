// Package sipsim simulates a SIP PBX / presence server (Kamailio or
// Asterisk as a BLF watcher sees them) for the SIP connector's tests,
// benchmarks and `presencebridge demo --phone sip`, as ucsim and graphsim do
// for the other sides. It serves real SIP (sipgo) on a free 127.0.0.1 port,
// UDP and TCP, and a Kamailio-compatible JSON-RPC endpoint over HTTP.
//
// # SIP behaviour
//
//   - SUBSCRIBE Event: dialog for a known extension (the Request-URI user)
//     → 200 with a To-tag, Expires = the granted expiry (Options.MaxExpires
//     caps it, absent means Options.DefaultExpires), then at once a NOTIFY
//     with the full state and Subscription-State: active;expires=N.
//     Unknown extension → 404; any other event → 489 with Allow-Events;
//     no Contact → 400. Expires: 0 on an initial SUBSCRIBE is a fetch: one
//     NOTIFY, terminated.
//   - In-dialog SUBSCRIBE (To-tag) refreshes: 200, a full NOTIFY, the new
//     expiry; Expires: 0 ends with a NOTIFY "terminated;reason=timeout" (as
//     Kamailio words it). An unknown dialog → 481.
//   - A subscription not refreshed in time ends with a NOTIFY
//     "terminated;reason=timeout". A NOTIFY answered 481 or 408, or not at
//     all within Options.NotifyTimeout, ends the subscription silently
//     (Kamailio's timeout_rm_subs).
//   - NOTIFYs of one subscription go one at a time, in CSeq order, from the
//     listening socket (UDP) or over the subscriber's connection (TCP), to
//     the SUBSCRIBE's Contact, through its Record-Route set.
//   - With Options.User set, SUBSCRIBE and PUBLISH are challenged with 407
//     (Proxy-Authenticate), REGISTER with 401 (WWW-Authenticate); digest
//     MD5, qop=auth.
//   - A body over Options.MaxBody → 413. Requests missing From, To,
//     Call-ID or CSeq are dropped.
//
// # Calls
//
// StartCall / Answer / Hold / Conference / EndCall drive one call each on an
// extension and NOTIFY its dialog subscribers; Options.Style picks the body
// shape (see Style).
//
// # Faults
//
// RefuseSubscribe / RefusePublish / RefuseRegister answer with a chosen
// code; DropNotifies swallows NOTIFYs; SetAnswerDelay delays every answer;
// Restart forgets every subscription without a word (Kamailio restarted
// with subs_db_mode 0); Kill closes the sockets (and forgets the
// subscriptions) until Start binds the same ports again.
package sipsim
