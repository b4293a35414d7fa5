package ucserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// This file is the ROSE layer: decoding the server's text frames into
// messages and encoding the client's invokes (ucserver-protocol.md §2). It
// is deliberately tolerant on input, like the C++ runtime the server is
// built with: INTEGERs may come as numeric strings, BOOLEANs as 0/1, NULL as
// 0 or null, times as ISO strings or variant-time numbers. Anything it
// cannot make sense of is an error, never a panic.

// eventInvokeID marks an invoke that is an event: never answered.
const eventInvokeID = 99999

// maxInvokeID is the last id before the counter wraps (the stub wraps at
// 99998 so that no invoke ever looks like an event).
const maxInvokeID = 99998

type msgKind uint8

const (
	kindInvoke msgKind = iota + 1
	kindResult
	kindError
	kindReject
)

func (k msgKind) String() string {
	switch k {
	case kindInvoke:
		return "invoke"
	case kindResult:
		return "result"
	case kindError:
		return "error"
	case kindReject:
		return "reject"
	}
	return "?"
}

// message is one decoded ROSE message.
type message struct {
	kind msgKind
	// invokeID: the invoke's id, or the id a result/error/reject answers;
	// -1 for a reject of a frame the server could not parse (invokednull).
	invokeID int64

	// invoke
	opID     int64
	opName   string
	argument json.RawMessage

	// result: the value nested as result.result.result (nil when absent)
	result json.RawMessage

	// error (AsnRequestError)
	errValue  int64
	errDetail int64
	errText   string

	// reject
	problem     string // "invokeProblem", "generalProblem", ...
	problemCode int64
	details     string
}

// Bounds of what one frame may make the connector hold or write to its log.
const (
	// maxFrameMessages: UCWeb wraps one message per frame; a server that
	// batched would not batch hundreds.
	maxFrameMessages = 256
	// maxFrameErrors is how many element errors a frame's error spells out;
	// the others are only counted.
	maxFrameErrors = 3
	// maxErrorText bounds one spelt-out element error.
	maxErrorText = 200
	// maxNameText bounds an operationName, and maxDetailText the free texts
	// (reject details, error strings) kept from the server for logs,
	// problems and the console, which also get them without control
	// characters.
	maxNameText   = 128
	maxDetailText = 512
)

// decodeFrame splits one text frame into ROSE messages. UCWeb wraps every
// message in a JSON array; the brief (§6.12) does not say whether an array
// can hold several, so every element is decoded, one at a time as the array
// is read: a frame costs one element's memory, not one per element.
// Elements that do not decode are reported in the error (a count and the
// first few, truncated); the others are still returned. Past
// maxFrameMessages elements the rest of the frame is dropped.
func decodeFrame(data []byte) ([]message, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("empty frame")
	}
	if data[0] != '[' {
		m, err := decodeMessage(data)
		if err != nil {
			return nil, clipErr(err)
		}
		return []message{m}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // '['
		return nil, fmt.Errorf("frame is not JSON: %w", err)
	}
	var (
		out       []message
		first     []string
		bad, read int
		tooMany   bool
	)
	for dec.More() {
		if read == maxFrameMessages {
			tooMany = true
			break
		}
		read++
		// The element is sliced out of data rather than copied: the decoder
		// only finds where it ends.
		from := dec.InputOffset()
		if err := dec.Decode(&skipValue{}); err != nil {
			return out, frameErr(fmt.Errorf("frame is not JSON after %d elements: %w", read-1, err), bad, read, first)
		}
		raw := bytes.TrimLeft(data[from:dec.InputOffset()], " \t\r\n,")
		m, err := decodeMessage(raw)
		if err != nil {
			bad++
			if len(first) < maxFrameErrors {
				first = append(first, clip(fmt.Sprintf("element %d: %v", read-1, err), maxErrorText))
			}
			continue
		}
		out = append(out, m)
	}
	if !tooMany {
		if _, err := dec.Token(); err != nil { // ']'
			return out, frameErr(fmt.Errorf("frame is not JSON: %w", err), bad, read, first)
		}
		if _, err := dec.Token(); err != io.EOF {
			return out, frameErr(errors.New("frame is not JSON: data after the array"), bad, read, first)
		}
	}
	if read == 0 {
		return nil, errors.New("frame is an empty array")
	}
	var err error
	if tooMany {
		err = fmt.Errorf("frame has more than %d elements: the rest is dropped", maxFrameMessages)
	}
	return out, frameErr(err, bad, read, first)
}

// skipValue decodes any JSON value into nothing.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// frameErr is a frame's error: what stopped it (may be nil), and how many of
// the elements read did not decode, with the first few.
func frameErr(stop error, bad, read int, first []string) error {
	if bad == 0 {
		return clipErr(stop)
	}
	msg := fmt.Sprintf("%d of %d elements do not decode (%s", bad, read, strings.Join(first, "; "))
	if bad > len(first) {
		msg += "; …"
	}
	msg += ")"
	if stop != nil {
		msg = clip(stop.Error(), maxErrorText) + "; " + msg
	}
	return errors.New(msg)
}

func clipErr(err error) error {
	if err == nil || len(err.Error()) <= maxErrorText {
		return err
	}
	return errors.New(clip(err.Error(), maxErrorText))
}

// clip shortens s to at most n bytes of valid UTF-8, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// decodeMessage decodes a ROSEMessage: a CHOICE, so exactly one of the four
// members.
func decodeMessage(raw json.RawMessage) (message, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil || env == nil {
		return message{}, errors.New("not a JSON object")
	}
	var m message
	found := 0
	var err error
	for key, body := range env {
		switch key {
		case "invoke":
			m, err = decodeInvoke(body)
		case "result":
			m, err = decodeResult(body)
		case "error":
			m, err = decodeError(body)
		case "reject":
			m, err = decodeReject(body)
		default:
			continue
		}
		found++
		if err != nil {
			return message{}, fmt.Errorf("%s: %w", key, err)
		}
	}
	switch found {
	case 0:
		return message{}, errors.New("not a ROSE message (no invoke, result, error or reject)")
	case 1:
		return m, nil
	}
	return message{}, errors.New("ROSE message with more than one of invoke, result, error, reject")
}

// fields reads the members of one SEQUENCE. The first failure sticks.
type fields struct {
	m   map[string]json.RawMessage
	err error
}

func newFields(raw json.RawMessage) (*fields, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("not a JSON object")
	}
	return &fields{m: m}, nil
}

func (f *fields) fail(name, why string) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %s", name, why)
	}
}

func (f *fields) raw(name string) (json.RawMessage, bool) {
	v, ok := f.m[name]
	if !ok || isNull(v) {
		return nil, false
	}
	return v, true
}

func (f *fields) int(name string, required bool) int64 {
	v, ok := f.raw(name)
	if !ok {
		if required {
			f.fail(name, "missing")
		}
		return 0
	}
	n, err := parseInt(v)
	if err != nil {
		f.fail(name, err.Error())
	}
	return n
}

func (f *fields) str(name string) string {
	v, ok := f.raw(name)
	if !ok {
		return ""
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.fail(name, "not a string")
	}
	return s
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func decodeInvoke(raw json.RawMessage) (message, error) {
	f, err := newFields(raw)
	if err != nil {
		return message{}, err
	}
	m := message{kind: kindInvoke}
	m.invokeID = f.int("invokeID", true)
	m.opID = f.int("operationID", true)
	m.opName = clip(printable(f.str("operationName")), maxNameText)
	if a, ok := f.raw("argument"); ok {
		m.argument = a
	}
	return m, f.err
}

func decodeResult(raw json.RawMessage) (message, error) {
	f, err := newFields(raw)
	if err != nil {
		return message{}, err
	}
	m := message{kind: kindResult}
	m.invokeID = f.int("invokeID", true)
	if inner, ok := f.raw("result"); ok && f.err == nil {
		g, err := newFields(inner)
		if err != nil {
			return message{}, fmt.Errorf("result: %w", err)
		}
		g.int("resultValue", false)
		if v, ok := g.raw("result"); ok {
			m.result = v
		}
		if g.err != nil {
			return message{}, fmt.Errorf("result: %w", g.err)
		}
	}
	return m, f.err
}

func decodeError(raw json.RawMessage) (message, error) {
	f, err := newFields(raw)
	if err != nil {
		return message{}, err
	}
	m := message{kind: kindError}
	m.invokeID = f.int("invokedID", true)
	m.errValue = f.int("error_value", false)
	m.errDetail = m.errValue
	if e, ok := f.raw("error"); ok && f.err == nil {
		// The brief (§2.6): read iErrorDetail, not error_value.
		g, err := newFields(e)
		if err != nil {
			return message{}, fmt.Errorf("error: %w", err)
		}
		if _, ok := g.raw("iErrorDetail"); ok {
			m.errDetail = g.int("iErrorDetail", false)
		}
		m.errText = clip(printable(g.str("u8sErrorString")), maxDetailText)
		if g.err != nil {
			return message{}, fmt.Errorf("error: %w", g.err)
		}
	}
	return m, f.err
}

func decodeReject(raw json.RawMessage) (message, error) {
	f, err := newFields(raw)
	if err != nil {
		return message{}, err
	}
	m := message{kind: kindReject, invokeID: -1}
	if id, ok := f.raw("invokedID"); ok {
		// A CHOICE {invokedID INTEGER | invokednull NULL}; a bare number
		// is accepted too.
		if t := bytes.TrimSpace(id); len(t) > 0 && t[0] == '{' {
			g, err := newFields(id)
			if err != nil {
				return message{}, fmt.Errorf("invokedID: %w", err)
			}
			if _, ok := g.raw("invokedID"); ok {
				m.invokeID = g.int("invokedID", false)
				if m.invokeID < 0 {
					g.fail("invokedID", "negative")
				}
			} else if _, ok := g.m["invokednull"]; !ok {
				g.fail("invokedID", "neither invokedID nor invokednull")
			}
			if g.err != nil {
				return message{}, g.err
			}
		} else if m.invokeID = f.int("invokedID", false); m.invokeID < 0 {
			f.fail("invokedID", "negative")
		}
	} else if _, ok := f.m["invokedID"]; !ok {
		f.fail("invokedID", "missing")
	}
	if r, ok := f.raw("reject"); ok && f.err == nil {
		g, err := newFields(r)
		if err != nil {
			return message{}, fmt.Errorf("reject: %w", err)
		}
		for _, name := range []string{"invokeProblem", "generalProblem", "returnResultProblem", "returnErrorProblem"} {
			if _, ok := g.raw(name); ok {
				m.problem, m.problemCode = name, g.int(name, false)
				break
			}
		}
		if g.err != nil {
			return message{}, fmt.Errorf("reject: %w", g.err)
		}
	}
	m.details = clip(printable(f.str("details")), maxDetailText)
	return m, f.err
}

// parseInt accepts what the C++ runtime accepts for an INTEGER: a number
// (integral) or a numeric string.
func parseInt(raw json.RawMessage) (int64, error) {
	t := bytes.TrimSpace(raw)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err != nil {
			return 0, errors.New("not an integer")
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0, errors.New("not an integer")
		}
		return n, nil
	}
	var num json.Number
	if err := json.Unmarshal(t, &num); err != nil {
		return 0, errors.New("not an integer")
	}
	if n, err := num.Int64(); err == nil {
		return n, nil
	}
	f, err := num.Float64()
	if err != nil || f != math.Trunc(f) || f > math.MaxInt64 || f < math.MinInt64 {
		return 0, errors.New("not an integer")
	}
	return int64(f), nil
}

// asnInt is an INTEGER or ENUMERATED member inside an argument or result.
type asnInt int64

func (n *asnInt) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	v, err := parseInt(b)
	if err != nil {
		return err
	}
	*n = asnInt(v)
	return nil
}

// asnBool is a BOOLEAN: true/false, or anything convertible (0/1, "true").
type asnBool bool

func (v *asnBool) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		return nil
	}
	var x bool
	if err := json.Unmarshal(b, &x); err == nil {
		*v = asnBool(x)
		return nil
	}
	if n, err := parseInt(b); err == nil {
		*v = n != 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if x, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
			*v = asnBool(x)
			return nil
		}
	}
	return errors.New("not a boolean")
}

// asnTime is an AsnSystemTime: "" (unset), ISO-8601 UTC with or without
// milliseconds, or a number in Windows variant time (brief §4, §6.13).
type asnTime struct{ time.Time }

func (t *asnTime) UnmarshalJSON(b []byte) error {
	if isNull(b) {
		t.Time = time.Time{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s == "" {
			t.Time = time.Time{}
			return nil
		}
		p, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return errors.New("not an AsnSystemTime")
		}
		t.Time = p.UTC()
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("not an AsnSystemTime")
	}
	// Values below 10 days are "unset"; above year 9999 is garbage.
	if f < 10 {
		t.Time = time.Time{}
		return nil
	}
	if f > 2958465 || math.IsNaN(f) {
		return errors.New("AsnSystemTime out of range")
	}
	epoch := time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)
	days := math.Floor(f)
	frac := f - days
	t.Time = epoch.AddDate(0, 0, int(days)).Add(time.Duration(frac * float64(24*time.Hour))).Round(time.Millisecond)
	return nil
}

// formatSystemTime encodes like the server does: seconds, milliseconds only
// when non-zero, always UTC.
func formatSystemTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/int(time.Millisecond) != 0 {
		return t.Format("2006-01-02T15:04:05.000Z")
	}
	return t.Format("2006-01-02T15:04:05Z")
}

// optionalInt reads one integer from an AsnOptionalParameters value, which
// the server sends as an object map ({"BusyOnBusy":1}) and older stacks as
// an array of {key, value:{integerdata|stringdata|binarydata}}.
func optionalInt(raw json.RawMessage, key string) (int64, bool) {
	if isNull(raw) {
		return 0, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err == nil {
		if v, ok := m[key]; ok {
			n, err := parseInt(v)
			return n, err == nil
		}
		return 0, false
	}
	var list []struct {
		Key   string `json:"key"`
		Value struct {
			Integer json.RawMessage `json:"integerdata"`
			String  json.RawMessage `json:"stringdata"`
		} `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return 0, false
	}
	for _, e := range list {
		if e.Key != key {
			continue
		}
		for _, v := range []json.RawMessage{e.Value.Integer, e.Value.String} {
			if !isNull(v) {
				if n, err := parseInt(v); err == nil {
					return n, true
				}
			}
		}
	}
	return 0, false
}

// encodeInvoke builds a client invoke. Both operationID and operationName
// are sent: UCWeb routes by name (brief §2.3).
func encodeInvoke(invokeID int64, op int, arg any) ([]byte, error) {
	name := opName(op)
	if name == "" {
		return nil, fmt.Errorf("operation %d has no name", op)
	}
	a, err := json.Marshal(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the argument: %w", name, err)
	}
	return json.Marshal(struct {
		Invoke struct {
			InvokeID      int64           `json:"invokeID"`
			OperationID   int             `json:"operationID"`
			OperationName string          `json:"operationName"`
			Argument      json.RawMessage `json:"argument"`
		} `json:"invoke"`
	}{Invoke: struct {
		InvokeID      int64           `json:"invokeID"`
		OperationID   int             `json:"operationID"`
		OperationName string          `json:"operationName"`
		Argument      json.RawMessage `json:"argument"`
	}{invokeID, op, name, a}})
}

// encodeReject answers a server invoke the connector does not implement,
// as the C++ runtime would (invokeProblem 1).
func encodeReject(invokeID int64) []byte {
	return []byte(`{"reject":{"invokedID":{"invokedID":` + strconv.FormatInt(invokeID, 10) +
		`},"reject":{"invokeProblem":1},"details":"unrecognisedOperation"}}`)
}
