package ucserver

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Seeds: the brief's example messages (§2.5) and what the C++ runtime is
// lenient about.
var frameSeeds = []string{
	`{"invoke":{"invokeID":7,"operationID":4505,"operationName":"asnGetAndSubscribePresenceV2","argument":{"seqContactIDs":["sip:alice@example.com"]}}}`,
	`[{"result":{"invokeID":7,"result":{"resultValue":0,"result":{"_type":"AsnGetAndSubscribePresenceV2Result","seqSubscribedPresence":[{"u8sContactId":"sip:alice@example.com","iPresenceState":1}]}}}}]`,
	`[{"invoke":{"invokeID":99999,"operationID":4504,"operationName":"asnUpdatePresenceV2","argument":{"_type":"AsnUpdatePresenceV2Argument","iChangedFlags":16,"presence":{"u8sContactId":"sip:alice@example.com","iPresenceState":4,"asnAbsentState":{"u8sContactId":"sip:alice@example.com","eAbsentState":3}}}}}]`,
	`[{"error":{"invokedID":8,"error_value":2,"error":{"_type":"AsnRequestError","iErrorDetail":2,"u8sErrorString":"access denied"}}}]`,
	`[{"reject":{"invokedID":{"invokedID":9},"reject":{"invokeProblem":1},"details":"unrecognisedOperation"}}]`,
	`[{"reject":{"invokedID":{"invokednull":0},"reject":{"invokeProblem":2},"details":"parse error"}}]`,
	`{"invoke":{"invokeID":"99999","operationID":"1281","argument":{"iDoNotDisturb":"1"}}}`,
	`[{"result":{"invokeID":1}},{"result":{"invokeID":2,"result":{"resultValue":0,"result":{}}}}]`,
	`[]`, `[1]`, `{}`, `null`, `"x"`, `{"invoke":1}`, `{"invoke":{"invokeID":1.5,"operationID":1}}`,
	`{"invoke":{},"result":{}}`, `{"reject":{"invokedID":{"invokedID":-5}}}`, `{"reject":{"invokedID":-2}}`, `{"reject":{"invokedID":{}}}`, `{"invoke":{"invokeID":1e400,"operationID":1}}`,
}

func TestDecodeFrame(t *testing.T) {
	ms, err := decodeFrame([]byte(frameSeeds[1]))
	if err != nil || len(ms) != 1 || ms[0].kind != kindResult || ms[0].invokeID != 7 || len(ms[0].result) == 0 {
		t.Fatalf("result: %+v %v", ms, err)
	}
	ms, err = decodeFrame([]byte(frameSeeds[3]))
	if err != nil || ms[0].kind != kindError || ms[0].invokeID != 8 || ms[0].errDetail != 2 || ms[0].errText != "access denied" {
		t.Fatalf("error: %+v %v", ms, err)
	}
	ms, err = decodeFrame([]byte(frameSeeds[5]))
	if err != nil || ms[0].kind != kindReject || ms[0].invokeID != -1 || ms[0].problem != "invokeProblem" || ms[0].problemCode != 2 {
		t.Fatalf("reject: %+v %v", ms, err)
	}
	ms, err = decodeFrame([]byte(frameSeeds[6]))
	if err != nil || ms[0].invokeID != eventInvokeID || ms[0].opID != 1281 {
		t.Fatalf("numeric strings: %+v %v", ms, err)
	}
	ms, err = decodeFrame([]byte(frameSeeds[7]))
	if err != nil || len(ms) != 2 {
		t.Fatalf("two messages in one array: %+v %v", ms, err)
	}
	for _, bad := range frameSeeds[8:] {
		if ms, err := decodeFrame([]byte(bad)); err == nil {
			t.Errorf("decodeFrame(%s) = %+v, want an error", bad, ms)
		}
	}
	// One bad element does not cost the good ones.
	ms, err = decodeFrame([]byte(`[{"x":1},` + frameSeeds[4][1:]))
	if err == nil || len(ms) != 1 || ms[0].kind != kindReject {
		t.Fatalf("mixed array: %+v %v", ms, err)
	}
}

// A hostile frame costs a bounded error: a count and the first few, each
// short, and reading stops after maxFrameMessages elements.
func TestDecodeFrame_BoundedErrors(t *testing.T) {
	frame := "[" + strings.Repeat(`{"x":1},`, 100000) + frameSeeds[4][1:]
	ms, err := decodeFrame([]byte(frame))
	if err == nil || len(ms) != 0 {
		t.Fatalf("%d messages, err %v", len(ms), err)
	}
	if n := len(err.Error()); n > 2*maxFrameErrors*maxErrorText {
		t.Fatalf("error of %d bytes: %.300s", n, err)
	}
	for _, want := range []string{"more than 256 elements", "256 of 256 elements do not decode", "element 0:", "element 2:", "…"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Fewer bad elements than the limit: all counted, good ones kept.
	ms, err = decodeFrame([]byte("[" + strings.Repeat(`1,`, 10) + frameSeeds[4][1:]))
	if len(ms) != 1 || err == nil || !strings.Contains(err.Error(), "10 of 11 elements") {
		t.Fatalf("%+v %v", ms, err)
	}
	// Free texts from the server are clipped before they reach logs.
	long := strings.Repeat("é", 10000)
	ms, err = decodeFrame([]byte(`[{"invoke":{"invokeID":99999,"operationID":7777,"operationName":"` + long + `","argument":{}}},` +
		`{"reject":{"invokedID":{"invokednull":0},"details":"` + long + `"}},` +
		`{"error":{"invokedID":8,"error":{"u8sErrorString":"` + long + `"}}}]`))
	if err != nil || len(ms) != 3 {
		t.Fatalf("%+v %v", ms, err)
	}
	if len(ms[0].opName) > maxNameText+len("…") || len(ms[1].details) > maxDetailText+len("…") || len(ms[2].errText) > maxDetailText+len("…") {
		t.Fatalf("texts not clipped: %d %d %d", len(ms[0].opName), len(ms[1].details), len(ms[2].errText))
	}
	if !utf8.ValidString(ms[0].opName) || !utf8.ValidString(ms[1].details) {
		t.Fatal("clipped in the middle of a character")
	}
	// A single message that does not decode: its error is clipped too.
	if _, err := decodeFrame([]byte(`{"invoke":{"invokeID":1,"operationID":"` + strings.Repeat("9", 5000) + `x"}}`)); err == nil || len(err.Error()) > maxErrorText+len("…") {
		t.Fatalf("single message error: %v", err)
	}
}

func TestAsnTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		`""`:                         {},
		`"2026-11-25T09:10:00Z"`:     time.Date(2026, 11, 25, 9, 10, 0, 0, time.UTC),
		`"2026-11-25T09:10:00.250Z"`: time.Date(2026, 11, 25, 9, 10, 0, 250e6, time.UTC),
		`46351.5`:                    time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		`0`:                          {},
	} {
		var got asnTime
		if err := json.Unmarshal([]byte(in), &got); err != nil || !got.Equal(want) {
			t.Errorf("%s: %v %v, want %v", in, got.Time, err, want)
		}
	}
	var bad asnTime
	if err := json.Unmarshal([]byte(`"yesterday"`), &bad); err == nil {
		t.Error("accepted a bad time")
	}
	if s := formatSystemTime(time.Date(2026, 11, 25, 9, 10, 0, 0, time.UTC)); s != "2026-11-25T09:10:00Z" {
		t.Errorf("format %s", s)
	}
}

// FuzzDecodeFrame: no input makes the decoder panic, every decoded message
// is well-formed, and an invoke the connector encodes decodes to itself.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := decodeFrame(data)
		for _, m := range ms {
			if m.kind < kindInvoke || m.kind > kindReject {
				t.Fatalf("message of kind %d", m.kind)
			}
			if m.kind == kindReject && m.invokeID < -1 {
				t.Fatalf("reject names invoke %d", m.invokeID)
			}
		}
		if err == nil && len(ms) == 0 {
			t.Fatal("no error and no message")
		}
		// Whatever arrived as an event argument must not panic the model
		// decoders either.
		for _, m := range ms {
			for _, v := range []any{&wUpdatePresence{}, &wNotifyCall{}, &wNotifyDND{}, &wMonitorStart{}, &wSubscribeResult{}} {
				_ = json.Unmarshal(m.argument, v)
				_ = json.Unmarshal(m.result, v)
			}
			_, _ = optionalInt(m.argument, "BusyOnBusy")
		}
		b, err := encodeInvoke(int64(len(data)), opSetUserAbsentState, map[string]string{"x": string(data)})
		if err != nil {
			t.Fatalf("encodeInvoke: %v", err)
		}
		back, err := decodeFrame(b)
		if err != nil || len(back) != 1 || back[0].kind != kindInvoke || back[0].invokeID != int64(len(data)) || back[0].opID != opSetUserAbsentState {
			t.Fatalf("round trip: %+v %v", back, err)
		}
	})
}
