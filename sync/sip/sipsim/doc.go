// Package sipsim simulates a SIP PBX / presence server (Kamailio or
// Asterisk as a BLF watcher sees them) for the SIP connector's tests,
// benchmarks and `presencebridge demo --phone sip`, as ucsim and graphsim do
// for the other sides. It serves real SIP (sipgo) on a free 127.0.0.1 port,
// UDP and TCP, and a Kamailio-compatible JSON-RPC endpoint over HTTP.
//
// # SIP behaviour
//
//   - SUBSCRIBE Event: dialog (or presence, see PUBLISH) for a known extension (the Request-URI user)
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
// StartCall(ext) → id (ringing: early; "Trying" first in the Kamailio
// shapes), Answer(id) (confirmed), Hold(id, on) (+sip.rendering=no on the
// local target), Conference(id) (isfocus on the local target), EndCall(id)
// (terminated, then forgotten). Each change NOTIFYs the extension's dialog
// subscribers; Options.Style picks the body shape (see Style). Calls(ext)
// lists the live ones.
//
// # PUBLISH
//
// Event: presence with a PIDF body (RFC 3903): initial → 200 + SIP-ETag +
// the granted Expires; refresh with SIP-If-Match and no body; modify with
// both; SIP-If-Match + Expires: 0 removes; an unknown ETag → 412. Every
// success hands out a fresh ETag (Kamailio does). Published(ext) returns the
// newest live body, PublishedPresence(ext) its activities, note and basic.
//
// # JSON-RPC and busy on busy
//
// RPCURL() is a Kamailio 5.6 jsonrpcs endpoint (POST /RPC) serving
// htable.get / seti / sets / setex / setxi / setxs / delete / dump on
// Options.HTables, with Kamailio's reply and fault shapes (see htable.go).
// Busy(ext) reports a live entry in Options.BusyTable; Invite(ext) answers
// 486 while it exists (as the documented snippet's
// `$sht(teamsbusy=>$rU) != $null` does), 404 for an unknown extension,
// else 200, and counts refusals in Stats.
//
// # Faults
//
// RefuseSubscribe / RefusePublish / RefuseRegister answer with a chosen
// code; DropNotifies swallows NOTIFYs (the subscription stays);
// SetAnswerDelay delays every SIP answer; Restart forgets every
// subscription without a word (Kamailio restarted with subs_db_mode 0);
// Kill closes the sockets and forgets the subscriptions until Start binds
// the same ports again; ClearFaults ends them.
//
// # For tests
//
// Subscriptions(ext) (dialog ids, granted expiry, refresh and NOTIFY
// counts, transport), Registrations(), Stats() and WaitStats(ctx, cond),
// HTableEntry / SetHTableEntry.
//
// # Guesses
//
//   - REGISTER accepts any user (the bridge's account need not be an
//     extension) and keeps the bindings only for Registrations.
//   - Asterisk's body never says "conference"; Conference changes nothing
//     there. Kamailio's pua_dialoginfo does not see hold either; the
//     simulator shows it on both Kamailio shapes anyway, so that the
//     connector's hold handling can be tested.
//   - NOTIFYs of a subscription that Restart or Kill dropped are not sent;
//     a NOTIFY already on the wire is not recalled.
//   - Event: presence subscriptions get the newest publication verbatim,
//     else a dummy "open"/Available PIDF (never published) or a "closed"
//     one (publications gone), as Kamailio's presence_xml with
//     force_dummy_presence; the exact dummy text is approximated.
package sipsim
