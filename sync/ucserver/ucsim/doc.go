// Package ucsim simulates an estos UCServer as a client sees it through
// UCWeb/UCConnect: the UCConnect controller lookup, the createsession /
// destroysession HTTP endpoints, and the session WebSocket carrying JSON ROSE
// (docs: /work/shared/docs/ucserver-protocol.md). It owns a small model of
// people, their phone lines, calls, manual absent state and line DND, lets
// tests script what those people do, and injects faults (dropped sockets,
// delayed or refused createsession, failing operations). It exists so that
// the UCServer connector can be tested over real loopback sockets.
//
// # Wire behaviour
//
//   - GET /controller/client/ucws?ucsid=<Options.UCSID> → 200 with
//     Content-Length and {"redirect":"<URL>"}; any other ucsid → 204.
//   - GET|POST /ws/client/createsession: Basic auth, ?token= / x-uctoken,
//     or ?user=&pass=; X-ucsid "local" or Options.UCSID; optional body
//     {"negotiate":{"iClientProtocolVersion":70}} → 200 {"sessionid":…}.
//     No credentials → 401 + WWW-Authenticate (unless X-no401 / ?no401);
//     bad credentials → 400 AsnLogonError (iErrorDetail 101); unknown ucsid
//     → 502 WsError 119.
//   - GET /ws/client/destroysession?ucsessionid=… ends a session.
//   - /ws/client/websocket?x-ucsessionid=… (also …/websocket/?…) upgrades
//     for a live session; an unknown session gets 404.
//   - Every server frame is a one-element JSON array (unless
//     Options.PlainFrames); client frames may be an object or an array.
//   - Results: {"result":{"invokeID":n,"result":{"resultValue":0,"result":
//     {"_type":…}}}}; errors: {"error":{"invokedID":n,"error_value":d,
//     "error":{"_type":"AsnRequestError",…}}}; rejects: {"reject":
//     {"invokedID":{"invokedID":n},"reject":{"invokeProblem":p},"details":…}}.
//   - Unknown operation → reject 1 "unrecognisedOperation"; missing
//     argument → reject 2 "argumentMissing"; a missing or mistyped mandatory
//     member → reject 2 "mistypedArgument"; unparsable JSON → reject with
//     {"invokednull":0}. Nothing is ever answered for invokeID 99999.
//   - Events are invokes with invokeID 99999 carrying operationID and
//     operationName.
//   - A session ends when no keep-alive (1706 or 100, with the mandatory
//     "dummy" member) arrived for Options.KeepAliveTimeout, on asnLogoff,
//     on destroysession, or when its socket closes.
//
// Operations: asnKeepAlive 100, asnLogoff 1001, asnGetLoggedInContactV2
// 1008, asnSetUserAbsentState 1128, asnGetUserAbsentState 1129,
// asnResetUserAbsentState 1130, asnCtiDropCall 1203, asnCtiEnumPhoneLines
// 1260, asnCtiSnapshotPhoneLine 1261, asnCtiLineMonitorStart 1262,
// asnCtiLineMonitorStop 1263, asnCtiLineSetDoNotDisturb 1264,
// asnTransportKeepAlive 1706, asnCheckConnection 1714,
// asnUnsubscribePresence 4503, asnGetAndSubscribePresenceV2 4505. Events
// sent: asnCtiNotifyLineInfoChanged 1280, asnCtiNotifyLineDoNotDisturbChanged
// 1281, asnCtiNotifyLineCallInformationChanged 1283,
// asnCtiNotifyLineAddRemove 1284, asnCtiNotifyMonitorStopped 1294,
// asnUpdateMyAbsentStateV2 1313, asnRemovePresence 4501,
// asnUpdatePresenceV2 4504.
//
// The public client interface has no contact search; a connector matches
// people by contact id (sip:…) and reads u8sEMail / u8sSIPAddress from
// asnRemoteContact in the subscribe result.
//
// # Guesses
//
// Where the brief (§6) says the real behaviour is unknown, the simulator
// picks one of the following; each is marked "Guess" at its place in the
// code.
//
//  1. Presence computation (computePresenceLocked): manual absent state
//     sets the low byte; an active call raises "available" to "busy" and
//     sets eCALL; offering sets eRINGING, conferenced eCONFERENCING; line
//     DND does not change presence.
//  2. Presence events (publishLocked): one event per change with only the
//     changed sections; iChangedFlags = triggering sections plus 1 when
//     iPresenceState moved; iPresenceState included whenever flag 1 is
//     subscribed; seqPhoneLines full, seqCalls only the changed call.
//  3. AsnPresenceCallV2.iAction numbering: 0 add, 1 remove, 2 change.
//  4. No rights model: every session may watch, monitor and change
//     everyone; bDontRequestPermissions and bOpenOnlyInternalContacts are
//     accepted and ignored; typeofLines 1–3 list every line.
//  5. Unknown contact ids are left out of seqSubscribedPresence.
//  6. Error details for presence/absent operations: 1 unknown contact,
//     2 invalid value; unknown monitor cross-ref → 3 (invalidline).
//  7. An empty contact id in the absent-state operations means the
//     logged-in user.
//  8. Line DND needs an open line with feature bit 2; a monitor only with
//     Options.RequireMonitorForDND. The DND monitor event is sent on every
//     set (as a confirmation), the presence event only on a change;
//     BusyOnBusy changes are reported through the DND event.
//  9. Session lifetime: only keep-alive events reset the timer (unless
//     Options.AnyMessageKeepsAlive); expiry closes the socket with 1000
//     "session expired"; a session dies with its socket and cannot be
//     re-attached; one socket per session (second upgrade → 409).
//  10. HTTP statuses: unknown session on upgrade → 404; destroysession
//     answers 200 {} (404 for an unknown id); a request without ucsid is
//     treated as "local"; the 401 challenge is `Basic realm="UCServer"`;
//     X-no401 without credentials → 400 with iErrorDetail 105; an
//     unsupported Authorization scheme → 401 (or 400/106 with X-no401); the
//     400 body carries invokedID 0 and an empty sessionID.
//  11. error_value of ROSE errors equals iErrorDetail (as the TS stub does).
//  12. Every asnCtiLineMonitorStart creates a new monitor, even for a line
//     the session already monitors.
//  13. Absent state stTimeFrom/stTimeTo: the state counts for presence only
//     inside the window; at stTimeTo it returns to "not set" with events.
//  14. X-simple and x-epid are ignored; GET without a body and POST with a
//     negotiate body behave the same (Options.RequireNegotiate makes the
//     body mandatory).
//  15. Call scripting is one-sided: each call is one leg on one line; a
//     remote number that matches a simulated line only marks the call
//     internal and adds the remote contact.
//  16. bConferenceCtlr (and u8sConferenceCtlrID) of a call stay set once it
//     has been conferenced, also while it is on hold.
package ucsim
