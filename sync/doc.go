// Package sync is the domain of presencebridge: users, profiles, the presence
// of both sides, the rules of RULES.md (in this directory) as pure
// functions, the ports the adapters implement (Teams, PhoneSystem, Journal)
// and the Engine, the one goroutine that owns all live state and decides
// what each side shows. RULES.md is the behaviour in words; the console and
// the audit log cite its sections.
//
// The package imports the standard library only; adapters import it, never
// the other way round. Other packages import it under the alias psync.
//
// Interpretations of the rules (RULES.md) made here, each also noted
// where it is implemented:
//
//   - Teams states are classified by activity first, then availability:
//     Presenting > InACall/InAConferenceCall > DoNotDisturb > InAMeeting >
//     OutOfOffice > Busy > BeRightBack > Away > Available > Offline. A user in
//     a Teams call who also set DND is "in a call" for the phone side; an
//     out-of-office user in a call is in a call.
//   - "Presenting" is real-time communication: it protects every device when
//     cross-device busy on busy is on, like a Teams call does.
//   - Cross-device busy on busy is its own switch: it applies even when
//     "apply Teams state to the phone system" is off (that switch governs
//     presence only, §3 table).
//   - If the phone presence already shows what the bridge would impose (the
//     user set DND by hand), the bridge imposes nothing and so restores nothing.
//   - When the user changes a value the bridge holds, the bridge yields for
//     the rest of that reason (it does not re-impose until the Teams call or
//     phone call that justified it has ended).
//   - While the bridge's Teams session is active, Teams Busy with any call
//     activity (and Busy/Busy, which Graph has been seen to report for an
//     app-set call) is the bridge's echo. A conference activity when the
//     bridge set a plain call, or the reverse, is shown as "possibly also in
//     Teams".
//   - A Teams availability below Busy (Available, Away, BeRightBack, Offline)
//     while the bridge's session has been seen in Teams means a user-preferred
//     state overrides it: the bridge keeps its session and reports it.
//   - A graceful shutdown releases everything the bridge holds; nothing is
//     handed over. What a side that is down cannot take stays in the journal
//     (ErrHoldsKept), and the stop still counts as clean.
//   - A hold is the bridge's while the side shows its target, the value the
//     side last confirmed, or a value written with no known outcome; where
//     the side keeps end times, the end time is part of the value.
//   - "Available" picked by hand and "not set" are two phone presences.
//   - A conference on hold is still a conference.
package sync
