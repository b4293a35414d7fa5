package ucserver

import "encoding/json"

// Operation ids of the UCServer client interface (ASN.1 interface 8) the
// connector uses or understands (ucserver-protocol.md §3.1).
const (
	opKeepAlive                           = 100
	opLogoff                              = 1001
	opGetLoggedInContactV2                = 1008
	opSetUserAbsentState                  = 1128
	opGetUserAbsentState                  = 1129
	opResetUserAbsentState                = 1130
	opCtiEnumPhoneLines                   = 1260
	opCtiSnapshotPhoneLine                = 1261
	opCtiLineMonitorStart                 = 1262
	opCtiLineMonitorStop                  = 1263
	opCtiLineSetDoNotDisturb              = 1264
	opCtiNotifyLineInfoChanged            = 1280
	opCtiNotifyLineDoNotDisturbChanged    = 1281
	opCtiNotifyLineForwardingChanged      = 1282
	opCtiNotifyLineCallInformationChanged = 1283
	opCtiNotifyLineAddRemove              = 1284
	opCtiNotifyMakeCallResult             = 1285
	opCtiNotifyLineCallFeaturesChanged    = 1290
	opCtiNotifyMonitorStopped             = 1294
	opUpdateMyContactConfigurationV2      = 1309
	opUpdateMyAbsentStateV2               = 1313
	opTransportKeepAlive                  = 1706
	opCheckConnection                     = 1714
	opRemovePresence                      = 4501
	opUnsubscribePresence                 = 4503
	opUpdatePresenceV2                    = 4504
	opGetAndSubscribePresenceV2           = 4505
)

var opNames = map[int]string{
	opKeepAlive:                           "asnKeepAlive",
	opLogoff:                              "asnLogoff",
	opGetLoggedInContactV2:                "asnGetLoggedInContactV2",
	opSetUserAbsentState:                  "asnSetUserAbsentState",
	opGetUserAbsentState:                  "asnGetUserAbsentState",
	opResetUserAbsentState:                "asnResetUserAbsentState",
	opCtiEnumPhoneLines:                   "asnCtiEnumPhoneLines",
	opCtiSnapshotPhoneLine:                "asnCtiSnapshotPhoneLine",
	opCtiLineMonitorStart:                 "asnCtiLineMonitorStart",
	opCtiLineMonitorStop:                  "asnCtiLineMonitorStop",
	opCtiLineSetDoNotDisturb:              "asnCtiLineSetDoNotDisturb",
	opCtiNotifyLineInfoChanged:            "asnCtiNotifyLineInfoChanged",
	opCtiNotifyLineDoNotDisturbChanged:    "asnCtiNotifyLineDoNotDisturbChanged",
	opCtiNotifyLineForwardingChanged:      "asnCtiNotifyLineForwardingChanged",
	opCtiNotifyLineCallInformationChanged: "asnCtiNotifyLineCallInformationChanged",
	opCtiNotifyLineAddRemove:              "asnCtiNotifyLineAddRemove",
	opCtiNotifyMakeCallResult:             "asnCtiNotifyMakeCallResult",
	opCtiNotifyLineCallFeaturesChanged:    "asnCtiNotifyLineCallFeaturesChanged",
	opCtiNotifyMonitorStopped:             "asnCtiNotifyMonitorStopped",
	opUpdateMyContactConfigurationV2:      "asnUpdateMyContactConfigurationV2",
	opUpdateMyAbsentStateV2:               "asnUpdateMyAbsentStateV2",
	opTransportKeepAlive:                  "asnTransportKeepAlive",
	opCheckConnection:                     "asnCheckConnection",
	opRemovePresence:                      "asnRemovePresence",
	opUnsubscribePresence:                 "asnUnsubscribePresence",
	opUpdatePresenceV2:                    "asnUpdatePresenceV2",
	opGetAndSubscribePresenceV2:           "asnGetAndSubscribePresenceV2",
}

func opName(op int) string { return opNames[op] }

// opByName resolves an event's name; the brief (§2.3) says to dispatch on
// the name and fall back to the id.
func opByName(name string) int {
	for id, n := range opNames {
		if n == name {
			return id
		}
	}
	return 0
}

// Presence subscription flags (AsnPresenceSubscriptionFlags).
const (
	subPresence    = 1
	subData        = 2
	subAbsentState = 16
	subPhoneLines  = 128
	subPhoneCalls  = 256
	// subscribeFlags is what Run subscribes: presence, contact data,
	// absent state, lines and calls (the brief's suggested 403).
	subscribeFlags = subPresence | subData | subAbsentState | subPhoneLines | subPhoneCalls
)

// Absent states (AsnAbsentStateEnum).
const (
	absentNotAbsent    = 0
	absentOutOfOffice  = 1
	absentBusy         = 2
	absentDoNotDisturb = 3
	absentNotSet       = 4
)

// Call states (EnumCallState / EAsnCallState).
const (
	callStateDestroyed    = 1
	callStateOffering     = 2
	callStateDialing      = 4
	callStateRingback     = 8
	callStateBusy         = 16
	callStateConnected    = 32
	callStateConferenced  = 64
	callStateHold         = 128
	callStateDisconnected = 256
	callStatePrepareCall  = 512
)

// Call types (EAsnCallType) that mean a conference leg.
const (
	callTypeConferenceController = 2
	callTypeConferenceMember     = 4
)

// Decoding shapes. Only members the connector reads are listed; unknown
// members are ignored (the ASN.1 types have extension markers).

type wNetContact struct {
	DisplayName   string `json:"u8sDisplayName"`
	FirstName     string `json:"u8sFirstName"`
	LastName      string `json:"u8sLastName"`
	EMail         string `json:"u8sEMail"`
	SIPAddress    string `json:"u8sSIPAddress"`
	PhoneBusiness string `json:"u8sPhoneBusiness"`
}

type wAbsentState struct {
	ContactID   string  `json:"u8sContactId"`
	AbsentState *asnInt `json:"eAbsentState"`
	TimeFrom    asnTime `json:"stTimeFrom"`
	TimeTo      asnTime `json:"stTimeTo"`
}

type wPresenceLine struct {
	URI          string `json:"u8sLinePhoneNumber"`
	Number       string `json:"u8sLineNumber"`
	State        asnInt `json:"iState"`
	DoNotDisturb asnInt `json:"iDoNotDisturb"`
}

type wPresenceCall struct {
	Action       asnInt `json:"iAction"`
	ConnectionID string `json:"u8sConnectionID"`
	LineURI      string `json:"u8sLinePhoneNumber"`
	CallState    asnInt `json:"eCallState"`
	CallType     asnInt `json:"eCallType"`
}

type wPresence struct {
	ContactID     string           `json:"u8sContactId"`
	PresenceState *asnInt          `json:"iPresenceState"`
	RemoteContact *wNetContact     `json:"asnRemoteContact"`
	AbsentState   *wAbsentState    `json:"asnAbsentState"`
	PhoneLines    *[]wPresenceLine `json:"seqPhoneLines"`
	Calls         *[]wPresenceCall `json:"seqCalls"`
}

type wUpdatePresence struct {
	Presence     *wPresence `json:"presence"`
	ChangedFlags asnInt     `json:"iChangedFlags"`
}

type wSubscribeResult struct {
	Presences []wPresence `json:"seqSubscribedPresence"`
}

type wAbsentStateHolder struct {
	AbsentState *wAbsentState `json:"absentstate"`
}

type wCtiLineInfo struct {
	URI         string `json:"u8sLinePhoneNumber"`
	Descriptor  string `json:"u8sDescriptor"`
	PhoneNumber string `json:"u8sPhoneNumber"`
	OpenStatus  asnInt `json:"iLineOpenStatus"`
	Features    asnInt `json:"iLineFeatures"`
}

type wCtiCall struct {
	LineURI        string  `json:"u8sLinePhoneNumber"`
	ConnectionID   string  `json:"u8sConnectionID"`
	CallState      asnInt  `json:"iCallState"`
	CallType       asnInt  `json:"iCallType"`
	ConferenceCtlr asnBool `json:"bConferenceCtlr"`
}

type wMonitorStart struct {
	CrossRefID     string          `json:"u8sMonitorCrossRefID"`
	LineInfo       *wCtiLineInfo   `json:"lineInfo"`
	Calls          []wCtiCall      `json:"seqCalls"`
	DoNotDisturb   asnInt          `json:"iDoNotDisturb"`
	OptionalParams json.RawMessage `json:"optionalParams"`
}

type wEnumLines struct {
	Lines []wCtiLineInfo `json:"seqLines"`
}

type wNotifyDND struct {
	CrossRefID     string          `json:"u8sMonitorCrossRefID"`
	LineURI        string          `json:"u8sLinePhoneNumber"`
	DoNotDisturb   *asnInt         `json:"iDoNotDisturb"`
	OptionalParams json.RawMessage `json:"optionalParams"`
}

type wNotifyCall struct {
	CrossRefID string    `json:"u8sMonitorCrossRefID"`
	LineURI    string    `json:"u8sLinePhoneNumber"`
	Reason     asnInt    `json:"reason"`
	Call       *wCtiCall `json:"callinformation"`
}

type wNotifyLineInfo struct {
	CrossRefID string        `json:"u8sMonitorCrossRefID"`
	LineURI    string        `json:"u8sLinePhoneNumber"`
	LineInfo   *wCtiLineInfo `json:"lineInfo"`
}

type wNotifyAddRemove struct {
	LineURI   string        `json:"u8sLinePhoneNumber"`
	AddRemove asnInt        `json:"addremove"`
	LineInfo  *wCtiLineInfo `json:"lineInfo"`
}

type wMonitorStopped struct {
	CrossRefID string `json:"u8sMonitorCrossRefID"`
}

type wRemovePresence struct {
	ContactID string `json:"u8sContactID"` // sic: capital ID in this type
}

type wContactPhoneLine struct {
	URI    string `json:"u8sLinePhoneNumber"`
	Number string `json:"u8sNumber"`
}

type wLoggedInContact struct {
	LoggedInUser string `json:"u8sLoggedInUser"`
	OwnContact   *struct {
		ContactID     string              `json:"u8sContactId"`
		RemoteContact *wNetContact        `json:"asnRemoteContact"`
		PhoneLines    []wContactPhoneLine `json:"seqPhoneLines"`
	} `json:"ownContact"`
}

// Encoding shapes: every mandatory member is always sent (a missing one is
// a mistypedArgument reject on the server).

type nullDummy struct {
	Dummy *struct{} `json:"dummy"` // always null
}

type subscribeArg struct {
	ContactIDs              []string `json:"seqContactIDs"`
	EventFlagsToSubscribe   int      `json:"iEventFlagsToSubscribe"`
	ContactDetailsFilter    int      `json:"iContactDetailsReturnFilter"`
	DontRequestPermissions  bool     `json:"bDontRequestPermissions"`
	OpenOnlyInternalContact bool     `json:"bOpenOnlyInternalContacts"`
}

type absentStateArg struct {
	ContactID   string `json:"u8sContactId"`
	AbsentState int    `json:"eAbsentState"`
	TimeTo      string `json:"stTimeTo,omitempty"`
}

type setAbsentArg struct {
	AbsentState absentStateArg `json:"absentstate"`
}

type getAbsentArg struct {
	ContactID string `json:"contactId"` // sic: not u8sContactId
}

type resetAbsentArg struct {
	ContactID string `json:"u8sContactId"`
}

type enumLinesArg struct {
	TypeOfLines        int `json:"typeofLines"`
	AttachChangeNotify int `json:"attachChangeNotify"`
}

type lineArg struct {
	LineURI string `json:"u8sLinePhoneNumber"`
}

type setDNDArg struct {
	LineURI string `json:"u8sLinePhoneNumber"`
	DND     bool   `json:"bDoNotDisturb"`
}
