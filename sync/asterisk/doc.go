// Package asterisk is the Asterisk/FreePBX connector: it implements the
// engine's psync.PhoneSystem port over the Asterisk Manager Interface (AMI,
// TCP 5038), with its own small AMI client (no Go AMI library is served by
// the module proxy): a banner check, Login answering an MD5 challenge (the
// secret never crosses the network), ActionID
// correlation (list answers collected up to their ...Complete event), events
// in wire order, a Ping keep-alive (a missed Pong drops the connection) and
// bounded reads (Limits: a longer line, more lines or more bytes in one
// message drop the connection with ErrFrame, never a panic; memory is
// bounded per message by Limits and per list answer by its item cap). On any loss it reconnects with psync.Backoff
// and reads everything again, then sends a PhoneSnapshot per user and
// PhoneSynced; per-user Versions only grow.
//
// # Reading
//
// A user's extensions are their Extension field (comma-separated), or the id
// when that is empty. Their devices are, on profile freepbx, the FreePBX
// devices of each extension (AstDB AMPUSER/<ext>/device, split on "&", each
// dialled as DEVICE/<dev>/dial, e.g. PJSIP/201); on profile asterisk,
// PJSIP/<ext>, or SIP/<ext> where DeviceStateList lists that (chan_sip)
// instead. Device.ID is that Asterisk device name. Calls come from
// DeviceStateChange (DeviceStateList replays them at every (re)connect):
// INUSE, BUSY and RINGINUSE are a connected call, ONHOLD a held one,
// RINGING none. A ConfbridgeJoin or MeetmeJoin by a channel of the device
// marks its call a conference until it ends (a conference already running
// when the bridge connects is seen as a plain call: DeviceStateList does
// not say, and ConfbridgeList needs more privileges). Call.ID is "<device>#<n>", new
// for every call. Custom device states are never calls: Custom:DND<ext> is
// the DND FreePBX (and the bridge) sets, Custom:DEVDND<dev> its per-device
// lamp, and hints and ExtensionStatus, which aggregate them
// ("PJSIP/201&Custom:DND201" reads Busy while DND is on), are not read at
// all, so the bridge's own DND never comes back to it as a call.
//
// # Writing: why device protection, not presence
//
// FreePBX DND is per user (DND/<ext> = YES in AstDB, which FreePBX's
// dialplan checks before ringing any device of the extension). The engine's
// two phone-side values are phone presence (RULES.md §1: Teams DND,
// presenting, in a call) and device protection (§1 call protection, §3
// cross_device_busy_on_busy: every device of the user rejects calls during
// a Teams call). FreePBX DND is the second: it makes the PBX reject or
// divert calls, which is exactly what protection promises, and it has the
// engine's give-back semantics (§4.1) if the bridge can tell its own DND
// from the person's. So SetDeviceProtection on any device of the user sets
// FreePBX DND for the user, every device shows it (Device.DND), and it is
// cleared when the last device the bridge asked on is given back. Mapping it
// to presence instead would make a Teams "Do not disturb" block calls the
// person never chose to block, and a person's *78 would read as a presence
// the bridge could overwrite.
//
// The bridge tells its DND from the person's by a mark it writes before the
// DND, in its own AstDB family: teams/<ext>/dnd = the devices it asked on
// ("PJSIP/201&PJSIP/211"). The mark lives in the PBX, so a restarted bridge
// (kill -9 included) still knows what it holds: the snapshot shows the DND,
// the engine's reconciliation gives it back, and the give-back clears it
// because the mark is there. A DND without the mark (the person's *78, the
// UCP) is never cleared: a give-back or switch-off returns
// psync.ErrChangedByUser, and a set over it writes nothing. The person
// clearing the bridge's DND (*79) is seen (Custom:DND<ext> leaves BUSY), and
// the later give-back finds it off and only removes the mark.
//
// Profile freepbx writes exactly what FreePBX's Donotdisturb.class.php
// writes: DBPut DND/<ext> YES, then DEVICE_STATE(Custom:DEVDND<dev>)=BUSY
// per device and DEVICE_STATE(Custom:DND<ext>)=BUSY; clearing is DBDel and
// the same states to UNAVAILABLE. FreePBX's DND has no expiry: a bridge that
// dies holding it leaves it set until it starts again and reconciles (the
// hold is in its journal, the mark in AstDB).
//
// Profile asterisk writes DEVICE_STATE(Custom:teams<ext>)=BUSY and
// teams/<ext>/until = the lease end (unix seconds, phone.lease ahead,
// renewed every Config.Refresh while held); extensions-teams.conf rejects
// calls with Busy only while that time lies ahead, so the PBX ends the
// protection by itself when the bridge is gone.
//
// Presence (asterisk.presence true): the Teams state goes to
// PRESENCE_STATE(CustomPresence:<ext>) for phones that show it: Busy is
// "dnd,busy,In a Teams call", DND "dnd,,Do not disturb", a give-back writes
// the value that was there. Without it the connector reports PhoneNotSet,
// presence writes are refused (ErrRejected naming asterisk.presence) and
// Abilities leaves presence out.
//
// # Permissions
//
// The least manager.conf account is read = call, write = system,call
// (ManagerStanza). A refused action is ErrRejected naming the class to
// add; Doctor checks them with ListCommands and a probe event.
//
// # Verified against the simulator only
//
// Asterisk cannot be installed here: every test runs against amisim, built
// from the AMI documentation, Asterisk's source and FreePBX's. Not checked
// on a real PBX: the exact texts of refusals ("Permission denied",
// "Database entry not found"), DBGet's list form (Asterisk 13+),
// ListCommands listing only permitted actions, and the order of a
// DeviceStateChange and the Setvar answer that caused it.
package asterisk
