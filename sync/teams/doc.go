// Package teams is the Microsoft Teams side of the bridge: the Microsoft
// Graph adapter behind the engine's Teams port. It is the only package that
// imports msgraph-sdk-go, azidentity and MSAL (a test keeps it so).
//
// It owns app-only authentication (client secret or certificate, any
// cloud: the authority and Graph URLs are settings), resolving users to
// Entra object ids, reading presence (poll mode: getPresencesByUserId in
// chunks of at most 650 ids at an interval that keeps to a share of the
// presence budget; subscribe mode: change notifications to a webhook, with
// delegated service accounts signed in by device code), writing the
// bridge's presence session (setPresence with keep-alive, clearPresence),
// one request budget shared by reads and writes, throttling, and `doctor`.
//
// Two SDK traps are handled here once (graph-presence.md §6): the allowed
// hosts follow the configured Graph URL (otherwise the SDK silently sends
// no bearer token), and the middleware order is fixed with compression
// outside retry (kiota-http-go builds it from a map, so the order is random
// per process, and a retried POST could go out uncompressed but labelled
// gzip).
package teams
