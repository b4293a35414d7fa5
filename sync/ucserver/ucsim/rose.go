package ucsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// EventInvokeID is the invokeID that marks a fire-and-forget invoke (an
// event) in both directions; it is never answered.
const EventInvokeID = 99999

// Operation ids of the UCServer client interface (ASN.1 interface version 8)
// that the simulator knows. Stats.Invokes and Stats.Events are keyed by them.
const (
	OpKeepAlive                           = 100
	OpLogoff                              = 1001
	OpGetLoggedInContactV2                = 1008
	OpSetUserAbsentState                  = 1128
	OpGetUserAbsentState                  = 1129
	OpResetUserAbsentState                = 1130
	OpCtiDropCall                         = 1203
	OpCtiEnumPhoneLines                   = 1260
	OpCtiSnapshotPhoneLine                = 1261
	OpCtiLineMonitorStart                 = 1262
	OpCtiLineMonitorStop                  = 1263
	OpCtiLineSetDoNotDisturb              = 1264
	OpCtiNotifyLineInfoChanged            = 1280
	OpCtiNotifyLineDoNotDisturbChanged    = 1281
	OpCtiNotifyLineCallInformationChanged = 1283
	OpCtiNotifyLineAddRemove              = 1284
	OpCtiNotifyMonitorStopped             = 1294
	OpUpdateMyAbsentStateV2               = 1313
	OpTransportKeepAlive                  = 1706
	OpCheckConnection                     = 1714
	OpRemovePresence                      = 4501
	OpUnsubscribePresence                 = 4503
	OpUpdatePresenceV2                    = 4504
	OpGetAndSubscribePresenceV2           = 4505
)

// OperationName returns the ASN.1 operation name for an id the simulator
// knows, or "" for any other id.
func OperationName(id int) string {
	switch id {
	case OpKeepAlive:
		return "asnKeepAlive"
	case OpLogoff:
		return "asnLogoff"
	case OpGetLoggedInContactV2:
		return "asnGetLoggedInContactV2"
	case OpSetUserAbsentState:
		return "asnSetUserAbsentState"
	case OpGetUserAbsentState:
		return "asnGetUserAbsentState"
	case OpResetUserAbsentState:
		return "asnResetUserAbsentState"
	case OpCtiDropCall:
		return "asnCtiDropCall"
	case OpCtiEnumPhoneLines:
		return "asnCtiEnumPhoneLines"
	case OpCtiSnapshotPhoneLine:
		return "asnCtiSnapshotPhoneLine"
	case OpCtiLineMonitorStart:
		return "asnCtiLineMonitorStart"
	case OpCtiLineMonitorStop:
		return "asnCtiLineMonitorStop"
	case OpCtiLineSetDoNotDisturb:
		return "asnCtiLineSetDoNotDisturb"
	case OpCtiNotifyLineInfoChanged:
		return "asnCtiNotifyLineInfoChanged"
	case OpCtiNotifyLineDoNotDisturbChanged:
		return "asnCtiNotifyLineDoNotDisturbChanged"
	case OpCtiNotifyLineCallInformationChanged:
		return "asnCtiNotifyLineCallInformationChanged"
	case OpCtiNotifyLineAddRemove:
		return "asnCtiNotifyLineAddRemove"
	case OpCtiNotifyMonitorStopped:
		return "asnCtiNotifyMonitorStopped"
	case OpUpdateMyAbsentStateV2:
		return "asnUpdateMyAbsentStateV2"
	case OpTransportKeepAlive:
		return "asnTransportKeepAlive"
	case OpCheckConnection:
		return "asnCheckConnection"
	case OpRemovePresence:
		return "asnRemovePresence"
	case OpUnsubscribePresence:
		return "asnUnsubscribePresence"
	case OpUpdatePresenceV2:
		return "asnUpdatePresenceV2"
	case OpGetAndSubscribePresenceV2:
		return "asnGetAndSubscribePresenceV2"
	}
	return ""
}

// operationID resolves a name the way the C++ runtime does for invokes that
// carry operationID 0 (older HTML samples send only the name).
func operationID(name string) int {
	for _, id := range []int{
		OpKeepAlive, OpLogoff, OpGetLoggedInContactV2, OpSetUserAbsentState,
		OpGetUserAbsentState, OpResetUserAbsentState, OpCtiDropCall,
		OpCtiEnumPhoneLines, OpCtiSnapshotPhoneLine, OpCtiLineMonitorStart,
		OpCtiLineMonitorStop, OpCtiLineSetDoNotDisturb, OpTransportKeepAlive,
		OpCheckConnection, OpUnsubscribePresence, OpGetAndSubscribePresenceV2,
	} {
		if OperationName(id) == name {
			return id
		}
	}
	return 0
}

// InvokeProblem values of ROSE rejects (SNACCROSE.asn1).
const (
	ProblemUnrecognisedOperation = 1
	ProblemMistypedArgument      = 2
)

// RequestError is an AsnRequestError, the error value of every operation the
// simulator implements.
type RequestError struct {
	Detail int
	Text   string
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("AsnRequestError %d: %s", e.Detail, e.Text)
}

// errMistyped makes the dispatcher send a mistypedArgument reject, which is
// what the C++ runtime does when an argument does not decode.
type errMistyped struct{ reason string }

func (e *errMistyped) Error() string { return "mistypedArgument: " + e.reason }

// Outgoing envelopes. Member names and nesting follow the brief §2.1 (which
// follows SNACCROSE.cpp): results are nested twice, errors and rejects spell
// the id "invokedID", and a reject's id is itself a CHOICE.
type roseErrorOut struct {
	SessionID  string          `json:"sessionID,omitempty"`
	InvokedID  int64           `json:"invokedID"`
	ErrorValue int64           `json:"error_value"`
	Error      json.RawMessage `json:"error"`
}

type roseRejectOut struct {
	SessionID string          `json:"sessionID,omitempty"`
	InvokedID json.RawMessage `json:"invokedID"`
	Reject    map[string]int  `json:"reject"`
	Details   string          `json:"details,omitempty"`
}

type requestErrorOut struct {
	ErrorDetail int    `json:"iErrorDetail"`
	ErrorString string `json:"u8sErrorString"`
}

// typed marshals v and adds "_type" as the first member, as AsnAny::JEnc does
// for the top-level value of an argument, result or error.
func typed(name string, v any) json.RawMessage {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own wire structs reach this point; they always marshal.
		panic(fmt.Sprintf("ucsim: marshal %s: %v", name, err))
	}
	var b bytes.Buffer
	b.Grow(len(body) + len(name) + 12)
	b.WriteString(`{"_type":`)
	b.WriteString(strconv.Quote(name))
	if len(body) > 2 {
		b.WriteByte(',')
		b.Write(body[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes()
}

// envelope builds one server frame: {"<kind>": v}, wrapped in a one-element
// array unless plain is set (UCWeb wraps every message; the stub calls that
// "technically wrong" but it is what clients see).
func envelope(plain bool, kind string, v any) []byte {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ucsim: marshal %s: %v", kind, err))
	}
	var b bytes.Buffer
	b.Grow(len(body) + len(kind) + 8)
	if !plain {
		b.WriteByte('[')
	}
	b.WriteString(`{"`)
	b.WriteString(kind)
	b.WriteString(`":`)
	b.Write(body)
	b.WriteByte('}')
	if !plain {
		b.WriteByte(']')
	}
	return b.Bytes()
}

// eventFrame and resultFrame are the hot paths (fan-out, bulk subscribe),
// so they splice the typed payload in directly instead of marshalling it a
// second time as a json.RawMessage.
func eventFrame(plain bool, op int, argType string, arg any) []byte {
	payload := typed(argType, arg)
	var b bytes.Buffer
	b.Grow(len(payload) + 128)
	if !plain {
		b.WriteByte('[')
	}
	b.WriteString(`{"invoke":{"invokeID":`)
	b.WriteString(strconv.Itoa(EventInvokeID))
	b.WriteString(`,"operationID":`)
	b.WriteString(strconv.Itoa(op))
	b.WriteString(`,"operationName":"`)
	b.WriteString(OperationName(op)) // ASCII identifiers, no escaping needed
	b.WriteString(`","argument":`)
	b.Write(payload)
	b.WriteString(`}}`)
	if !plain {
		b.WriteByte(']')
	}
	return b.Bytes()
}

func resultFrame(plain bool, sessionID string, invokeID int64, resultType string, result any) []byte {
	payload := typed(resultType, result)
	var b bytes.Buffer
	b.Grow(len(payload) + 128)
	if !plain {
		b.WriteByte('[')
	}
	b.WriteString(`{"result":{`)
	if sessionID != "" {
		sid, _ := json.Marshal(sessionID)
		b.WriteString(`"sessionID":`)
		b.Write(sid)
		b.WriteByte(',')
	}
	b.WriteString(`"invokeID":`)
	b.WriteString(strconv.FormatInt(invokeID, 10))
	b.WriteString(`,"result":{"resultValue":0,"result":`)
	b.Write(payload)
	b.WriteString(`}}}`)
	if !plain {
		b.WriteByte(']')
	}
	return b.Bytes()
}

func errorFrame(plain bool, sessionID string, invokeID int64, e *RequestError) []byte {
	return envelope(plain, "error", roseErrorOut{
		SessionID: sessionID,
		InvokedID: invokeID,
		// Guess: the TS server stub sets error_value to iErrorDetail; the
		// one documented server sample (createsession) shows 0.
		ErrorValue: int64(e.Detail),
		Error:      typed("AsnRequestError", requestErrorOut{ErrorDetail: e.Detail, ErrorString: e.Text}),
	})
}

// rejectFrame builds a reject; invokeID < 0 selects the invokednull choice,
// which AsnNull::JEnc encodes as 0.
func rejectFrame(plain bool, sessionID string, invokeID int64, problem int, details string) []byte {
	id := json.RawMessage(`{"invokednull":0}`)
	if invokeID >= 0 {
		id = json.RawMessage(`{"invokedID":` + strconv.FormatInt(invokeID, 10) + `}`)
	}
	return envelope(plain, "reject", roseRejectOut{
		SessionID: sessionID,
		InvokedID: id,
		Reject:    map[string]int{"invokeProblem": problem},
		Details:   details,
	})
}

// roseInvokeIn is a decoded client invoke. The C++ decoder requires invokeID
// and operationID; everything else is optional.
type roseInvokeIn struct {
	sessionID     string
	invokeID      int64
	operationID   int
	operationName string
	argument      json.RawMessage
}

// decodeMessages splits a text frame into ROSE messages: a plain object, or
// an array of them (we tolerate the UCWeb array wrapper from clients too).
func decodeMessages(data []byte) ([]json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, err
		}
		return list, nil
	}
	if !json.Valid(data) {
		var v any
		return nil, json.Unmarshal(data, &v)
	}
	return []json.RawMessage{data}, nil
}

// decodeInvoke reads the members of a ROSEInvoke. It returns the invokeID it
// managed to read (or -1) together with any error so that the reject can
// name the invoke, as SnaccROSEBase does.
func decodeInvoke(raw json.RawMessage) (roseInvokeIn, error) {
	inv := roseInvokeIn{invokeID: -1}
	a, err := newArgs(raw)
	if err != nil {
		return inv, err
	}
	if id, ok := a.optInt("invokeID"); ok {
		inv.invokeID = id
	} else {
		a.fail("invokeID", "missing")
	}
	if op, ok := a.optInt("operationID"); ok {
		inv.operationID = int(op)
	} else {
		a.fail("operationID", "missing")
	}
	inv.operationName, _ = a.optStr("operationName")
	inv.sessionID, _ = a.optStr("sessionID")
	if v, ok := a.m["argument"]; ok && !isNull(v) {
		inv.argument = v
	}
	return inv, a.err
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// args reads ASN.1 SEQUENCE members from a JSON object with the acceptance
// rules of the C++ runtime (brief §4): strings must be strings, INTEGERs may
// be numbers or numeric strings, BOOLEANs anything convertible. The first
// failure sticks in err; callers check it once at the end.
type args struct {
	m   map[string]json.RawMessage
	err error
}

func newArgs(raw json.RawMessage) (*args, error) {
	a := &args{}
	if isNull(raw) {
		a.m = map[string]json.RawMessage{}
		return a, nil
	}
	if err := json.Unmarshal(raw, &a.m); err != nil {
		return nil, &errMistyped{reason: "argument is not an object"}
	}
	if a.m == nil {
		a.m = map[string]json.RawMessage{}
	}
	return a, nil
}

func (a *args) fail(name, why string) {
	if a.err == nil {
		a.err = &errMistyped{reason: name + ": " + why}
	}
}

func (a *args) get(name string) (json.RawMessage, bool) {
	v, ok := a.m[name]
	if !ok || isNull(v) {
		return nil, false
	}
	return v, true
}

func (a *args) str(name string) string {
	v, ok := a.optStr(name)
	if !ok {
		a.fail(name, "missing")
	}
	return v
}

func (a *args) optStr(name string) (string, bool) {
	raw, ok := a.get(name)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		a.fail(name, "not a string")
		return "", false
	}
	return s, true
}

func (a *args) int(name string) int64 {
	v, ok := a.optInt(name)
	if !ok {
		a.fail(name, "missing")
	}
	return v
}

func (a *args) optInt(name string) (int64, bool) {
	raw, ok := a.get(name)
	if !ok {
		return 0, false
	}
	v, ok := parseInt(raw)
	if !ok {
		a.fail(name, "not an integer")
		return 0, false
	}
	return v, true
}

func parseInt(raw json.RawMessage) (int64, bool) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		if f, err := n.Float64(); err == nil && f == math.Trunc(f) {
			return int64(f), true
		}
		return 0, false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return i, true
		}
	}
	return 0, false
}

func (a *args) bool(name string) bool {
	v, ok := a.optBool(name)
	if !ok {
		a.fail(name, "missing")
	}
	return v
}

func (a *args) optBool(name string) (bool, bool) {
	raw, ok := a.get(name)
	if !ok {
		return false, false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, true
	}
	if i, ok := parseInt(raw); ok {
		return i != 0, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if v, err := strconv.ParseBool(s); err == nil {
			return v, true
		}
	}
	a.fail(name, "not a boolean")
	return false, false
}

func (a *args) strList(name string) []string {
	raw, ok := a.get(name)
	if !ok {
		a.fail(name, "missing")
		return nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		a.fail(name, "not a list of strings")
		return nil
	}
	return l
}

func (a *args) obj(name string) *args {
	raw, ok := a.get(name)
	if !ok {
		a.fail(name, "missing")
		return &args{m: map[string]json.RawMessage{}}
	}
	sub, err := newArgs(raw)
	if err != nil {
		a.fail(name, "not an object")
		return &args{m: map[string]json.RawMessage{}}
	}
	return sub
}

// optTime reads an AsnSystemTime: "" means unset, ISO-8601 UTC with or
// without milliseconds, or a number in Windows variant time.
func (a *args) optTime(name string) (time.Time, bool) {
	raw, ok := a.get(name)
	if !ok {
		return time.Time{}, false
	}
	t, err := parseSystemTime(raw)
	if err != nil {
		a.fail(name, err.Error())
		return time.Time{}, false
	}
	return t, true
}

// variantEpoch is day 0.0 of Windows variant time (day 2.0 = 1900-01-01).
func variantEpoch() time.Time { return time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC) }

func parseSystemTime(raw json.RawMessage) (time.Time, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, errors.New("not an AsnSystemTime")
		}
		return t.UTC(), nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, errors.New("not an AsnSystemTime")
	}
	if f < 10 {
		return time.Time{}, nil
	}
	return variantEpoch().Add(time.Duration(f * float64(24*time.Hour))).Round(time.Millisecond), nil
}

// formatSystemTime encodes like the Windows build of the C++ runtime:
// seconds precision, milliseconds only when non-zero, "" for unset.
func formatSystemTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	if t.Nanosecond()/int(time.Millisecond) != 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05Z")
}
