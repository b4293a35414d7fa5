package ucsim

import "encoding/json"

// Wire shapes of the ASN.1 types the simulator emits. OPTIONAL members are
// pointers with omitempty (absent, never null); mandatory members are always
// written, even when empty, because the C++ decoder of a real client stack
// rejects a SEQUENCE with a missing mandatory member.

type netDatabaseContact struct {
	DisplayName   string `json:"u8sDisplayName,omitempty"`
	FirstName     string `json:"u8sFirstName,omitempty"`
	LastName      string `json:"u8sLastName,omitempty"`
	EMail         string `json:"u8sEMail,omitempty"`
	SIPAddress    string `json:"u8sSIPAddress,omitempty"`
	PhoneBusiness string `json:"u8sPhoneBusiness,omitempty"`
	CtiUserName   string `json:"u8sCtiServerUserName,omitempty"`
}

type absentStateV2 struct {
	ContactID      string          `json:"u8sContactId"`
	AbsentState    int             `json:"eAbsentState"`
	PresenceState  *int            `json:"iPresenceState,omitempty"`
	TimeFrom       *string         `json:"stTimeFrom,omitempty"`
	TimeTo         *string         `json:"stTimeTo,omitempty"`
	Reachability   *int            `json:"eReachability,omitempty"`
	ExternalStates json.RawMessage `json:"externalPresenceStates,omitempty"`
}

type customNote struct {
	ContactID string `json:"u8sContactID"`
	Username  string `json:"u8sUsername"`
	Note      string `json:"u8sNote"`
}

type presenceLine struct {
	LinePhoneNumber string `json:"u8sLinePhoneNumber"`
	LineNumber      string `json:"u8sLineNumber"`
	State           int    `json:"iState"`
	DoNotDisturb    int    `json:"iDoNotDisturb"`
	ForwardFeatures int    `json:"iForwardFeaturesPBX"`
}

type presenceCallV2 struct {
	Action          int                 `json:"iAction"`
	ConnectionID    string              `json:"u8sConnectionID"`
	LinePhoneNumber string              `json:"u8sLinePhoneNumber"`
	LineNumber      string              `json:"u8sLineNumber"`
	CurrentNumberSC string              `json:"u8sCurrentNumberSC"`
	TrackerID       string              `json:"u8sTrackerID"`
	CallState       int                 `json:"eCallState"`
	Features        int                 `json:"iFeatures"`
	Outbound        bool                `json:"bOutbound"`
	Internal        bool                `json:"bInternal"`
	CallType        int                 `json:"eCallType"`
	JournalCallType int                 `json:"eJournalCallType"`
	RemoteContact   *netDatabaseContact `json:"remoteContact,omitempty"`
}

type presenceForward struct {
	LinePhoneNumber string `json:"u8sLinePhoneNumber"`
	LineNumber      string `json:"u8sLineNumber"`
	InternalID      int    `json:"iInternalID"`
	Destination     string `json:"u8sDestination"`
	ForwardMode     int    `json:"iForwardMode"`
}

type appointmentEntry struct {
	EntryID     string `json:"u8sEntryID"`
	Owner       string `json:"u8sOwner"`
	DataSource  string `json:"u8sDataSource"`
	Start       string `json:"stStart"`
	End         string `json:"stEnd"`
	Duration    int    `json:"iDuration"`
	Subject     string `json:"u8sSubject"`
	Text        string `json:"u8sText"`
	AllDay      bool   `json:"bAllDay"`
	Status      int    `json:"iStatus"`
	Category    string `json:"u8sCategory"`
	Importance  int    `json:"iImportance"`
	Sensitivity int    `json:"iSensitivity"`
	IsValid     bool   `json:"bIsValid"`
}

type presenceV2 struct {
	ContactID           string              `json:"u8sContactId"`
	PresenceState       *int                `json:"iPresenceState,omitempty"`
	RemoteContact       *netDatabaseContact `json:"asnRemoteContact,omitempty"`
	ContactFeatureSet   *int                `json:"iContactFeatureSet,omitempty"`
	StaticRights        *int                `json:"iStaticRights,omitempty"`
	MonitorAccessRights *int                `json:"iMonitorAccessRights,omitempty"`
	AbsentState         *absentStateV2      `json:"asnAbsentState,omitempty"`
	CustomNote          *customNote         `json:"asnCustomNote,omitempty"`
	ActualAppointments  *[]appointmentEntry `json:"seqActualAppointments,omitempty"`
	PhoneLines          *[]presenceLine     `json:"seqPhoneLines,omitempty"`
	Calls               *[]presenceCallV2   `json:"seqCalls,omitempty"`
	LineForwards        *[]presenceForward  `json:"seqLineForwards,omitempty"`
	StaticRights2       *int                `json:"iStaticRights2,omitempty"`
}

type updatePresenceV2Arg struct {
	Presence     presenceV2 `json:"presence"`
	ChangedFlags int        `json:"iChangedFlags"`
}

type contactCallInformationV2 struct {
	ContactChangedID     string `json:"u8sContactChangedId"`
	PresenceState        int    `json:"iPresenceState"`
	ConnectionID         string `json:"u8sConnectionID"`
	LinePhoneNumber      string `json:"u8sLinePhoneNumber"`
	CallState            int    `json:"iCallState"`
	DisconnectedReason   int    `json:"iDisconnectedReason"`
	Features             int    `json:"iFeatures"`
	Outbound             bool   `json:"bOutbound"`
	Internal             bool   `json:"bInternal"`
	Private              bool   `json:"bPrivate"`
	CallRecordingState   int    `json:"iCallRecordingState"`
	ConferenceCtlr       bool   `json:"bConferenceCtlr"`
	CurrentNumberSC      string `json:"u8sCurrentNumberSC"`
	TrackerID            string `json:"u8sTrackerID"`
	LocalCurrentNumberSC string `json:"u8sLocalCurrentNumberSC"`
}

type contactPhoneLineV2 struct {
	Type            int                        `json:"iType"`
	LinePhoneNumber string                     `json:"u8sLinePhoneNumber"`
	Descriptor      string                     `json:"u8sDescriptor"`
	Number          string                     `json:"u8sNumber"`
	Calls           []contactCallInformationV2 `json:"seqCalls"`
	LineForwards    []lineForward              `json:"seqLineForwards"`
	State           int                        `json:"iState"`
	DoNotDisturb    bool                       `json:"bDoNotDisturb"`
	ForwardFeatures int                        `json:"iForwardFeaturesPBX"`
	AddressNames    []string                   `json:"u8sAddressNames"`
	AddressCaps     string                     `json:"u8sAddressCaps"`
	CTIFeatureCodes string                     `json:"u8sCTIFeatureCodes"`
}

type stringPair struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type userPropertyBag struct {
	Properties []stringPair `json:"asnProperties"`
}

type contactV2 struct {
	ContactID           string               `json:"u8sContactId"`
	ContactFeatureSet   int                  `json:"iContactFeatureSet"`
	PresenceState       int                  `json:"iPresenceState"`
	StaticRights        int                  `json:"iStaticRights"`
	StaticRights2       int                  `json:"iStaticRights2"`
	MonitorAccessRights int                  `json:"iMonitorAccessRights"`
	RemoteContact       netDatabaseContact   `json:"asnRemoteContact"`
	PhoneLines          []contactPhoneLineV2 `json:"seqPhoneLines"`
	AbsentState         absentStateV2        `json:"asnAbsentState"`
	CustomNote          customNote           `json:"asnCustomNote"`
	ActualAppointments  []appointmentEntry   `json:"seqActualAppointments"`
	NextAppointment     appointmentEntry     `json:"asnNextAppointment"`
	UserPropertyBag     userPropertyBag      `json:"asnUserPropertyBag"`
}

type lineForward struct {
	InternalID        int      `json:"iInternalID"`
	ForwardController int      `json:"iForwardController"`
	ForwardMode       int      `json:"iForwardMode"`
	BackEndSpecific   int      `json:"iBackEndSpecific"`
	NoAnswerTime      int      `json:"iNoAnswerTime"`
	Destination       string   `json:"u8sDestination"`
	CallerIDList      []string `json:"u8sCallerIDList"`
}

type ctiLineInfo struct {
	Type                  int            `json:"iType"`
	LineOpenStatus        int            `json:"iLineOpenStatus"`
	LinePhoneNumber       string         `json:"u8sLinePhoneNumber"`
	Descriptor            string         `json:"u8sDescriptor"`
	PhoneNumber           string         `json:"u8sPhoneNumber"`
	LineLocationID        string         `json:"u8sLineLocationID"`
	LineFeatures          int            `json:"iLineFeatures"`
	ForwardFeaturesPBX    int            `json:"iForwardFeaturesPBX"`
	ForwardFeaturesSERVER int            `json:"iForwardFeaturesSERVER"`
	ForwardFeaturesUSER   int            `json:"iForwardFeaturesUSER"`
	OptionalParams        map[string]any `json:"optionalParams,omitempty"`
}

type projectPinRule struct {
	ProjectName                 string `json:"u8sProjectName"`
	ProjectPin                  string `json:"u8sProjectPin"`
	ProjectType                 int    `json:"iProjectType"`
	AssociatedCallIsPrivateCall bool   `json:"bAssociatedCallIsPrivateCall"`
	LocationID                  string `json:"u8sLocationID"`
	UserEnteredPin              string `json:"u8sUserEnteredPin"`
	UserEnteredUserID           string `json:"u8sUserEnteredUserID"`
}

type ctiCallInformation struct {
	LinePhoneNumber      string              `json:"u8sLinePhoneNumber"`
	ConnectionID         string              `json:"u8sConnectionID"`
	CallState            int                 `json:"iCallState"`
	CallType             int                 `json:"iCallType"`
	DisconnectedReason   int                 `json:"iDisconnectedReason"`
	Features             int                 `json:"iFeatures"`
	Outbound             bool                `json:"bOutbound"`
	Internal             bool                `json:"bInternal"`
	CallerIDBlocked      bool                `json:"bCallerIDBlocked"`
	CallRecordingState   int                 `json:"iCallRecordingState"`
	ConferenceCtlr       bool                `json:"bConferenceCtlr"`
	ConferenceCtlrID     string              `json:"u8sConferenceCtlrID"`
	LocalNumberSC        string              `json:"u8sLocalNumberSC"`
	RemoteNumberSC       string              `json:"u8sRemoteNumberSC"`
	RemoteContactSource  int                 `json:"iRemoteContactSource"`
	ProjectPinRule       projectPinRule      `json:"projectPinRule"`
	Note                 string              `json:"u8sNote"`
	TrackerID            string              `json:"u8sTrackerID"`
	CallCreated          string              `json:"utcCallCreated"`
	CallConnected        string              `json:"utcCallConnected"`
	CallDisconnected     string              `json:"utcCallDisconnected"`
	IsUnknownHoldContact bool                `json:"bIsUnknownHoldContact"`
	LocalContact         *netDatabaseContact `json:"pLocalContact,omitempty"`
	RemoteContact        *netDatabaseContact `json:"pRemoteContact,omitempty"`
}

type remoteOfficeState struct {
	Controller  string `json:"u8sController"`
	Enabled     int    `json:"iEnabled"`
	Destination string `json:"u8sDestination"`
}

type ctiLineMonitorStartResult struct {
	MonitorCrossRefID string               `json:"u8sMonitorCrossRefID,omitempty"`
	LineInfo          ctiLineInfo          `json:"lineInfo"`
	Calls             []ctiCallInformation `json:"seqCalls"`
	DoNotDisturb      int                  `json:"iDoNotDisturb"`
	LineForwards      []lineForward        `json:"seqLineForwards"`
	RemoteOfficeState remoteOfficeState    `json:"remoteOfficeState"`
	OptionalParams    map[string]any       `json:"optionalParams,omitempty"`
}

type ctiEnumPhoneLinesResult struct {
	Lines                 []ctiLineInfo `json:"seqLines"`
	LineMonitorCrossRefID string        `json:"u8sLineMonitorCrossRefID,omitempty"`
}

type ctiNotifyDNDArg struct {
	MonitorCrossRefID string         `json:"u8sMonitorCrossRefID"`
	LinePhoneNumber   string         `json:"u8sLinePhoneNumber"`
	DoNotDisturb      int            `json:"iDoNotDisturb"`
	OptionalParams    map[string]any `json:"optionalParams,omitempty"`
}

type ctiNotifyCallInfoArg struct {
	MonitorCrossRefID string             `json:"u8sMonitorCrossRefID"`
	LinePhoneNumber   string             `json:"u8sLinePhoneNumber"`
	Reason            int                `json:"reason"`
	CallInformation   ctiCallInformation `json:"callinformation"`
}

type ctiNotifyLineInfoArg struct {
	MonitorCrossRefID string      `json:"u8sMonitorCrossRefID"`
	LinePhoneNumber   string      `json:"u8sLinePhoneNumber"`
	LineInfo          ctiLineInfo `json:"lineInfo"`
}

type ctiNotifyLineAddRemoveArg struct {
	LineMonitorCrossRefID string      `json:"u8sLineMonitorCrossRefID"`
	LinePhoneNumber       string      `json:"u8sLinePhoneNumber"`
	AddRemove             int         `json:"addremove"`
	LineInfo              ctiLineInfo `json:"lineInfo"`
}

type ctiNotifyMonitorStoppedArg struct {
	MonitorCrossRefID string `json:"u8sMonitorCrossRefID"`
}
