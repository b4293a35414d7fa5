package asterisk_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/presencebridge/presencebridge/sync/asterisk"
)

func TestReadMessage(t *testing.T) {
	in := "Asterisk Call Manager/9.0.0\r\n" +
		"Response: Success\r\nActionID: pb-1\r\nMessage: Authentication accepted\r\n\r\n" +
		"\r\n" +
		"Event: DeviceStateChange\nDevice: PJSIP/201\nState: INUSE\n\n" +
		"Event: X\r\nEmpty:\r\nColon: a: b\r\n\r\n"
	r := asterisk.NewReader(strings.NewReader(in), asterisk.Limits{})
	b, err := r.Banner()
	if err != nil || b != "Asterisk Call Manager/9.0.0" {
		t.Fatalf("banner %q %v", b, err)
	}
	m, err := r.ReadMessage()
	if err != nil || m.Get("actionid") != "pb-1" || m.Get("Response") != "Success" {
		t.Fatalf("%v %v", m, err)
	}
	m, err = r.ReadMessage()
	if err != nil || m.Get("Device") != "PJSIP/201" || m.Get("State") != "INUSE" {
		t.Fatalf("bare LF: %v %v", m, err)
	}
	m, err = r.ReadMessage()
	if err != nil || m.Get("Colon") != "a: b" || !m.Has("Empty") || m.Get("Empty") != "" {
		t.Fatalf("%v %v", m, err)
	}
	if _, err := r.ReadMessage(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
}

func TestReadMessageLimits(t *testing.T) {
	lim := asterisk.Limits{MaxLine: 64, MaxFields: 4, MaxBytes: 100}
	for _, tc := range []struct{ name, in string }{
		{"long line", "Key: " + strings.Repeat("x", 100) + "\r\n\r\n"},
		{"many fields", strings.Repeat("A: b\r\n", 5) + "\r\n"},
		{"many bytes", strings.Repeat("Key: "+strings.Repeat("x", 40)+"\r\n", 3) + "\r\n"},
		{"no colon", "garbage\r\n\r\n"},
		{"empty key", ": v\r\n\r\n"},
	} {
		_, err := asterisk.NewReader(strings.NewReader(tc.in), lim).ReadMessage()
		if !errors.Is(err, asterisk.ErrFrame) {
			t.Errorf("%s: %v, want ErrFrame", tc.name, err)
		}
	}
	_, err := asterisk.NewReader(strings.NewReader("Event: X\r\nDev"), lim).ReadMessage()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut message: %v", err)
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add([]byte("Response: Success\r\nActionID: 1\r\n\r\nEvent: DeviceStateChange\r\nDevice: PJSIP/201\r\nState: INUSE\r\n\r\n"))
	f.Add([]byte("Event: X\n\n\n\nA:b\r\n:\r\n\r\n"))
	f.Add([]byte("\x00\xff\r\n"))
	f.Add(bytes.Repeat([]byte("K: v\r\n"), 40))
	lim := asterisk.Limits{MaxLine: 128, MaxFields: 16, MaxBytes: 1024}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := asterisk.NewReader(bytes.NewReader(data), lim)
		for range 1000 {
			m, err := r.ReadMessage()
			if err != nil {
				return
			}
			if len(m) == 0 || len(m) > lim.MaxFields {
				t.Fatalf("message with %d fields", len(m))
			}
			total := 0
			for _, fl := range m {
				if fl.Key == "" || strings.ContainsAny(fl.Key+fl.Value, "\r\n") {
					t.Fatalf("bad field %q", fl)
				}
				if len(fl.Key)+len(fl.Value) > lim.MaxLine {
					t.Fatalf("field longer than a line: %d", len(fl.Key)+len(fl.Value))
				}
				total += len(fl.Key) + len(fl.Value)
			}
			if total > lim.MaxBytes {
				t.Fatalf("message of %d bytes", total)
			}
		}
	})
}
