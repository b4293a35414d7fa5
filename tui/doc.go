// Package tui is the live console (Bubble Tea): dashboard, users, user
// detail, profiles, settings and the event log. It talks to the bridge only
// through a Controller and never opens the database.
package tui
