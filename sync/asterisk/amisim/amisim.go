// Package amisim simulates the Asterisk Manager Interface of an Asterisk
// running FreePBX, as an AMI client sees it, so that the Asterisk connector
// can be tested over real loopback sockets. Asterisk cannot be installed
// here; the behaviour comes from the AMI documentation (docs.asterisk.org
// AMI_Actions/AMI_Events), Asterisk's manager.c/db.c/res_manager_devicestate.c
// and FreePBX's donotdisturb module (Donotdisturb.class.php, the *78/*79
// feature codes). It is a simulator, not Asterisk: where the two could
// differ, the connector's tests only prove agreement with this file.
//
// # Wire behaviour
//
//   - On connect: "Asterisk Call Manager/<version>\r\n" (Options.Banner).
//   - Messages are "Key: Value" lines ended by an empty line; every answer
//     echoes the ActionID.
//   - Login (Username, Secret, Events): "Response: Success / Message:
//     Authentication accepted", or "Response: Error / Message:
//     Authentication failed" (and the connection stays open, as Asterisk's
//     does). Any action but Login before it: "Authentication Required".
//   - An action runs when the account's write classes share one with the
//     action's classes (manager.c): DBGet system|reporting, DBPut/DBDel
//     system, Setvar call, Getvar call|reporting, DeviceStateList and
//     ExtensionState call|reporting; Ping, Login, Logoff, Events and
//     ListCommands need none. Otherwise "Message: Permission denied".
//     ListCommands lists only the actions the account may run, as
//     "<Action>: <synopsis>  (Priv: <classes>)".
//   - Events go to sessions whose read classes include the event's class
//     ("call" for all of them here) and whose Events filter allows it.
//   - DBGet answers as a list (EventList: start, Event: DBGetResponse,
//     Event: DBGetComplete); a missing key: "Database entry not found".
//   - DeviceStateList replays every known device state as DeviceStateChange
//     events with the ActionID, then DeviceStateListComplete.
//   - Setvar/Getvar know DEVICE_STATE(Custom:x) (and read other devices),
//     PRESENCE_STATE(CustomPresence:x[,field]) and global variables.
//   - Unknown actions: "Invalid/unknown command: <name>. Use Action:
//     ListCommands to show available commands."
//
// # FreePBX model
//
// AddExtension writes what FreePBX's core module keeps in AstDB
// (AMPUSER/<ext>/device, DEVICE/<dev>/dial, DEVICE/<dev>/user) and the hint
// "PJSIP/<dev>[&...]&Custom:DND<ext>". A hint's state aggregates its
// devices (Asterisk's ast_devstate_aggregate): a Custom:DND<ext> of BUSY
// makes the extension Busy, which is why the bridge must never read hints
// or custom states as calls. ExtensionStatus events follow every change of
// a hint's aggregate. PersonDND is the person's *78/*79: the same AstDB and
// device state writes the FreePBX feature codes make (NOT_INUSE on *79,
// as app-dnd-off does; FreePBX's GUI clear uses UNAVAILABLE).
//
// Calls: StartCall (RINGING), Answer (INUSE), Hold (ONHOLD), End
// (NOT_INUSE), JoinConference (ConfbridgeJoin with the device's channel).
//
// Faults: DropConnections, FailLogins, SetDelay (slow answers),
// IgnorePings, Inject (raw bytes to every session), Restart (drops every
// connection and every call; AstDB and custom device states survive, as
// Asterisk keeps them in its database).
package amisim
