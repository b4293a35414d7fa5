// Package graphsim is a Microsoft Graph presence simulator together with the Microsoft Entra ID
// endpoints that MSAL (and so azidentity) talks to, served over HTTPS on 127.0.0.1 with a
// certificate from its own, freshly generated CA.
//
// It owns a simulated tenant: app registrations (secrets, certificates, granted roles and
// delegated scopes), users and groups; Teams presence sessions per user with Microsoft's
// aggregation, timeouts and expiry; presence change subscriptions with the validation handshake
// and webhook delivery of basic and rich (encrypted) notifications; Graph throttling, fault
// injection, and request and delivery logs that tests assert on. It exists so that sync/teams,
// built on msgraph-sdk-go and azidentity, can be tested, benchmarked and demoed without a real
// tenant, and so that it cannot tell the difference: wire formats follow
// shared/docs/graph-presence.md and what MSAL for Go actually sends (checked against MSAL for
// Go v1.10: secret, certificate with and without x5c, device code with polling, refresh).
//
// Time comes from an injected [Clock]. Everything that happens "later" in Graph (session
// timeouts and expiry, subscription expiry, token expiry) is evaluated against that clock on
// every request, on every scripting call, on [Server.Tick], and on a real-time ticker, so a test
// that moves a [ManualClock] and calls Tick sees every intermediate presence change, in order.
// Two things deliberately stay on the wall clock: TLS certificates, and the lifetime of client
// assertions (the client signs them with its wall clock).
//
// # Pointing the real client libraries at a Server s
//
//   - Trust s.CACertPEM() (write it to a file named by SSL_CERT_FILE, or put s.CertPool() in
//     the transport's tls.Config.RootCAs; azidentity takes it through ClientOptions.Transport).
//   - azidentity: ClientOptions.Cloud.ActiveDirectoryAuthorityHost = s.AuthorityHost() and
//     DisableInstanceDiscovery = true. Without the latter MSAL asks the real
//     login.microsoftonline.com to validate the unknown authority host. DeviceCodeCredential
//     needs ClientID set to a registered public-client app (its default is the Azure CLI's).
//   - msgraph-sdk-go: NewGraphServiceClientWithCredentialsAndHosts(cred, scopes,
//     []string{"127.0.0.1"}), then adapter.SetBaseUrl(s.GraphURL()). With the default allowed
//     hosts the SDK silently sends no Authorization header.
//   - Webhook receivers: Graph requires https notification URLs. Give the simulator a client
//     that trusts the receiver (Options.NotificationClient, e.g. an httptest TLS server's
//     Client()), or set Options.AllowHTTPNotificationURLs.
//   - MSAL caches tokens by wall-clock expiry while the simulator expires them by the injected
//     clock: a test that moves the clock past AccessTokenLifetime gets 401s from cached tokens,
//     exactly as Graph would after a revocation. Raise AccessTokenLifetime in tests that move
//     time but are not about token expiry.
//
// # Where the simulator guesses
//
// Microsoft documents behaviour, not every error body. Where the exact answer is unknown the
// simulator keeps the documented status and Graph's or Entra's error shape and words the
// message itself:
//
//   - setPresence: sessionId must equal the caller's app id (documented as what to send;
//     rejection with 400 InvalidArgument is a guess); invalid combinations → 400
//     InvalidArgument. "The provided [ExpirationDuration] is out of range." is observed text.
//   - clearPresence and unknown users → 404 NotFound; an app can only clear its own session.
//   - getPresencesByUserId: more than 650 ids or a non-GUID → 400 BadRequest; unknown GUIDs come
//     back as PresenceUnknown; duplicates once.
//   - Aggregation: BeRightBack ranks between Available and Away; ties go to the active
//     activity, then the latest change; a user-preferred state overrides calls as well; out of
//     office turns Available and Offline into …/OutOfOffice.
//   - Subscriptions: the Conflict and Forbidden texts are observed; the 60-minute, 650-user,
//     changeType, https and certificate texts are ours in the same ExtensionError or
//     InvalidRequest form; validation failures use code ValidationError. Unknown subscription
//     → 404 ResourceNotFound; reauthorize → 200. After reauthorizationRequired notifications
//     keep flowing until expiry. Rich payloads carry only the documented fields (no
//     sequenceNumber). Delivery is not retried for four hours (see Options.DeliveryRetries).
//   - 403 for presence uses the Teams-service wording ("Missing role permissions on the
//     request…"); directory endpoints use Authorization_RequestDenied. 429 bodies use code
//     TooManyRequests. The request budget counts admitted requests only, per app, on every
//     Graph endpoint.
//   - Entra: AADSTS50013 for a client assertion with a wrong audience, 70000 for a declined and
//     70020 for an expired device code, 9002313 for an unknown one; common and organizations
//     resolve to the one tenant; rotated refresh tokens stay valid; iat/nbf are back-dated five
//     minutes; the granted scope string names Graph permissions in URL form so MSAL's cache
//     finds them again.
package graphsim
