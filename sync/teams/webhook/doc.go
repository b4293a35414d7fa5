// Package webhook receives Microsoft Graph presence change notifications for the Teams
// adapter (shared/docs/graph-presence.md §3).
//
// It owns the HTTPS endpoint Graph posts to: the validation handshake, the clientState check
// against the adapter's subscriptions, decryption of rich (includeResourceData) notifications
// with the bridge's own encryption certificate, verification of the validationTokens that
// accompany them against the tenant's signing keys, and lifecycle notifications. What comes
// out is a stream of typed [Event]s; what goes wrong is counted in [Stats], never answered
// with an error Graph could retry for hours.
//
// The endpoint faces the internet, so everything anyone can make it hold is bounded:
// connections (under the descriptor limit, idle ones closed to make room), HTTP/2 streams
// per connection, notification POSTs read at once (503 past them), the body, the
// notifications in it and each one's size. The body is decoded as it arrives, and the first
// notification Graph cannot have sent ends it.
//
// The HTTP handler only does what must happen before Graph's three-second deadline: read the
// body, check clientState, and hand the notifications to a bounded queue. Everything slow
// (RSA decryption, fetching signing keys, waiting for the consumer) happens in
// [Receiver.Run], so a slow adapter can cost notifications (counted) but never Graph's
// patience with the endpoint.
//
// Apart from the standard library it uses only golang-jwt for the validation tokens: the
// Graph SDK has no webhook support worth its weight, and keeping this package small keeps
// it fuzzable and fast to test.
package webhook
