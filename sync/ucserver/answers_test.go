package ucserver

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"
)

var sessionAnswerSeeds = []struct {
	status int
	body   string
}{
	{200, `{"sessionid":"0123456789ABCDEF0123456789ABCDEF"}`},
	{200, `{"sessionID":"HOSTILE0123456789"}`},
	{200, `{"sessionid":""}`},
	{200, `{"sessionid":"a b"}`},
	{200, "{\"sessionid\":\"abc\\u001b[2Jdef\"}"},
	{200, `{"sessionid":"` + strings.Repeat("A", 300) + `"}`},
	{200, `not json`},
	{401, `{"error":{"iErrorDetail":101,"u8sErrorString":"wrong password"}}`},
	{400, `{"error":{"iErrorDetail":"105","u8sErrorString":"basic auth disabled"}}`},
	{502, `{"error":{"iErrorDetail":119}}`},
	{401, "{\"error\":{\"iErrorDetail\":101,\"u8sErrorString\":\"x\\u001b]0;owned\\u0007\\r\\nlevel=ERROR forged\"}}"},
	{401, `{"error":{"u8sErrorString":"` + strings.Repeat("é", 5000) + `"}}`},
	{302, ``},
	{500, `{}`},
}

func TestParseSessionAnswer(t *testing.T) {
	want := []string{"0123456789ABCDEF0123456789ABCDEF", "HOSTILE0123456789"}
	for i, s := range sessionAnswerSeeds {
		id, err := parseSessionAnswer(s.status, []byte(s.body))
		if i < len(want) {
			if err != nil || id != want[i] {
				t.Errorf("seed %d: %q %v, want %q", i, id, err, want[i])
			}
			continue
		}
		if err == nil {
			t.Errorf("seed %d (%d %.60s): accepted %q", i, s.status, s.body, id)
		}
	}
	_, err := parseSessionAnswer(401, []byte(sessionAnswerSeeds[10].body))
	var le *loginError
	if !errors.As(err, &le) || le.detail != 101 || !le.auth() {
		t.Fatalf("%#v", err)
	}
	if strings.ContainsFunc(le.Error(), unicode.IsControl) {
		t.Fatalf("control characters reach the error: %q", le.Error())
	}
	_, err = parseSessionAnswer(401, []byte(sessionAnswerSeeds[11].body))
	if !errors.As(err, &le) || len(le.text) > maxDetailText+len("…") {
		t.Fatalf("error text of %d bytes", len(le.text))
	}
}

var redirectSeeds = []struct {
	status     int
	body, conf string
}{
	{200, `{"redirect":"https://ucweb.example.com/"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":"http://ucweb.example.com"}`, "http://ucconnect.example.com"},
	{200, `{"redirect":"Http://ucweb.example.com"}`, "HTTP://ucconnect.example.com"},
	{200, `{"redirect":"http://ucweb.example.com"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":"http://ucweb.example.com"}`, "HTTPS://ucconnect.example.com"},
	{200, `{"redirect":"http://ucweb.example.com"}`, ""},
	{200, `{"redirect":"https://user:pw@ucweb.example.com"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":"https://ucweb.example.com/?x=1"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":"https://ucweb.example.com/#"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":"ftp://ucweb.example.com"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":"https://ucweb.example.com/\u0000"}`, "https://ucconnect.example.com"},
	{200, `{"redirect":""}`, "https://ucconnect.example.com"},
	{200, `[]`, "https://ucconnect.example.com"},
	{204, ``, "https://ucconnect.example.com"},
	{500, ``, "https://ucconnect.example.com"},
}

func TestParseRedirect(t *testing.T) {
	want := []string{"https://ucweb.example.com", "http://ucweb.example.com", "http://ucweb.example.com"}
	for i, s := range redirectSeeds {
		got, err := parseRedirect(s.status, []byte(s.body), s.conf)
		if i < len(want) {
			if err != nil || got != want[i] {
				t.Errorf("seed %d: %q %v, want %q", i, got, err, want[i])
			}
			continue
		}
		if err == nil {
			t.Errorf("seed %d (%d %s): accepted %q", i, s.status, s.body, got)
		}
	}
	var le *loginError
	if _, err := parseRedirect(http.StatusNoContent, nil, ""); !errors.As(err, &le) || le.detail != 119 {
		t.Fatalf("204: %v", err)
	}
}

func TestDirectoryUser_TextsForTheConsole(t *testing.T) {
	u := directoryUser(wPresence{ContactID: "sip:a@example.com", RemoteContact: &wNetContact{
		DisplayName: "Eve\x1b[31m red\r\nlevel=ERROR", EMail: "eve@example.com\x07", PhoneBusiness: strings.Repeat("1", 1000)}})
	for _, s := range []string{u.DisplayName, u.UPN, u.Extension} {
		if strings.ContainsFunc(s, unicode.IsControl) || len(s) > maxNameText+len("…") {
			t.Errorf("%q", s)
		}
	}
	if !strings.HasPrefix(u.DisplayName, "Eve") {
		t.Errorf("display name %q", u.DisplayName)
	}
}

// FuzzParseSessionAnswer: any answer gives a usable session id or an error,
// never a panic, and no text with control characters.
func FuzzParseSessionAnswer(f *testing.F) {
	for _, s := range sessionAnswerSeeds {
		f.Add(s.status, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		id, err := parseSessionAnswer(status, body)
		if err == nil {
			if !usableSessionID(id) {
				t.Fatalf("unusable id %q accepted", id)
			}
			return
		}
		if msg := err.Error(); strings.ContainsFunc(msg, unicode.IsControl) || len(msg) > 1024 {
			t.Fatalf("error %q", msg)
		}
	})
}

// FuzzParseRedirect: any controller answer gives an http(s) base without a
// query, user info or trailing slash, never http from an https controller.
func FuzzParseRedirect(f *testing.F) {
	for _, s := range redirectSeeds {
		f.Add(s.status, []byte(s.body), s.conf)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte, conf string) {
		got, err := parseRedirect(status, body, conf)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "https://") && !strings.HasPrefix(got, "http://") {
			t.Fatalf("base %q", got)
		}
		if cu, err := url.Parse(conf); strings.HasPrefix(got, "http://") && (err != nil || cu.Scheme != "http") {
			t.Fatalf("http base %q from %q", got, conf)
		}
		u, perr := url.Parse(got)
		if perr != nil || u.User != nil || strings.HasSuffix(got, "/") || strings.ContainsAny(got, "?# ") || strings.ContainsFunc(got, unicode.IsControl) {
			t.Fatalf("base %q", got)
		}
		_ = wsURL(got, "0123456789ABCDEF")
	})
}
