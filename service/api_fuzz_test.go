package service

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
)

// FuzzControlAPIBodies decodes request bodies through decode and
// valueBody, as the control API's handlers do, into each type they read.
// Any body gets a value or an error of kind ErrInvalid or ErrTooLarge
// whose message fits a terminal; never a panic.
func FuzzControlAPIBodies(f *testing.F) {
	for _, seed := range []string{
		`{"id":"100","name":"Ann","extension":"100","upn":"ann@contoso.example","profile":"default"}`,
		`{"name":"quiet","set_presence_in_teams":true,"cross_device_busy_on_busy":false}`,
		`{"profile":""}`, `{"name":"new"}`, `{"value":"20m"}`, `{"group":"9f3c0000-0000-4000-8000-000000000100"}`,
		`{"account":"ann@contoso.example"}`, `{}`, ``, `null`, `[]`, `{"value":null}`, `{"id":1}`,
		`{"name":"a"} {"name":"b"}`, `{"unknown":1}`, "{\"name\":\"\x1b[2J\"}", `{"name":"\u001b[2J"}`,
		`{"id":"1","status":"busy"}`, strings.Repeat("[", 10000), `{"value":"` + strings.Repeat("x", 70000) + `"}`,
	} {
		for kind := range byte(7) {
			f.Add(kind, []byte(seed))
		}
	}
	f.Fuzz(func(t *testing.T, kind byte, body []byte) {
		r := httptest.NewRequest("POST", "/v1/x", bytes.NewReader(body))
		var err error
		switch kind % 7 {
		case 0:
			var u psync.User
			err = decode(r, &u)
		case 1:
			var p psync.Profile
			err = decode(r, &p)
		case 2:
			var b struct {
				Profile *string `json:"profile"`
			}
			err = decode(r, &b)
		case 3:
			var b struct {
				Name *string `json:"name"`
			}
			err = decode(r, &b)
		case 4:
			_, err = valueBody(r)
		case 5:
			var b struct {
				Group string `json:"group"`
			}
			err = decode(r, &b)
		case 6:
			var b struct {
				Account string `json:"account"`
			}
			err = decode(r, &b)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error of another kind: %v", err)
		}
		if msg := err.Error(); len(msg) > 4096 || strings.ContainsAny(msg, "\x1b\r\n\x00") {
			t.Fatalf("error %q", msg)
		}
	})
}
