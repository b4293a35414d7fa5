package sync

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The checks below run where a value is entered (config set, import, the
// control API, the console), so that a wrong value is refused with its fix
// instead of being stored and failing later, at start or at the first call.

// ValidateSetting checks a value for a setting beyond its kind: the formats
// Microsoft Entra and Graph expect, and text an admin can read back. The
// value is checked as given (surrounding space is ignored); an empty value
// is always accepted, because it means "not set". Unknown keys pass:
// LookupSetting reports them.
func ValidateSetting(key, value string) error {
	v := strings.TrimSpace(value)
	if v == "" {
		return nil
	}
	if err := CheckText(key, v); err != nil {
		return err
	}
	switch key {
	case "teams.client_id":
		if !IsGUID(v) {
			return fmt.Errorf("%s: %q is not a GUID; copy the Application (client) ID from the app registration's overview in the Entra admin center (e.g. 11111111-2222-3333-4444-555555555555)", key, clipText(v))
		}
	case "teams.tenant_id":
		if !IsGUID(v) && !isDomain(v) {
			return fmt.Errorf("%s: %q is neither a GUID nor a domain; give the Directory (tenant) ID from the Entra admin center, or a verified domain such as contoso.onmicrosoft.com", key, clipText(v))
		}
	case "teams.webhook_url":
		u, err := url.Parse(v)
		switch {
		case err != nil || u.Host == "":
			return fmt.Errorf("%s: %q is not a URL; give the public https base URL Graph can reach, e.g. https://bridge.contoso.com", key, clipText(v))
		case u.Scheme != "https":
			return fmt.Errorf("%s: %q: Graph only delivers notifications to https URLs; put a TLS certificate on the listener (teams.webhook_tls_cert) or a TLS proxy in front of it and give its https URL", key, clipText(v))
		case u.User != nil:
			return fmt.Errorf("%s: the URL must not carry a user or password", key)
		case u.RawQuery != "" || u.Fragment != "":
			return fmt.Errorf("%s: %q: give the base URL without ?query or #fragment (the bridge adds /notify and /lifecycle)", key, clipText(v))
		}
	case "teams.service_accounts":
		for _, a := range strings.Split(v, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if !strings.Contains(a, "@") || strings.ContainsAny(a, " \t") {
				return fmt.Errorf("%s: %q is not a user principal name (name@contoso.com); separate several with commas", key, clipText(a))
			}
		}
	case "sip.server", "asterisk.host":
		if err := checkServerAddress(v); err != nil {
			example := "pbx.example:5060"
			if key == "asterisk.host" {
				example = "pbx.example:5038"
			}
			return fmt.Errorf("%s: %q is not a server address (host or host:port, e.g. %s): %v", key, clipText(v), example, err)
		}
	case "sip.rpc_url":
		u, err := url.Parse(v)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			return fmt.Errorf("%s: %q is not an http(s) URL; give the proxy's JSON-RPC over HTTP, e.g. http://10.0.0.5:5071/RPC", key, clipText(v))
		case u.Path == "" || u.Path == "/":
			return fmt.Errorf("%s: %q has no path; Kamailio's xhttp route serves JSON-RPC on one, e.g. http://%s/RPC", key, clipText(v), u.Host)
		case u.User != nil:
			return fmt.Errorf("%s: the URL must not carry a user or password (it is shown in status and doctor); keep the RPC port to the bridge's address instead (kamailio-busy.cfg says how)", key)
		}
	case "sip.extensions":
		for _, pair := range strings.Split(v, ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			ext, user, ok := strings.Cut(pair, "=")
			if !ok || strings.TrimSpace(ext) == "" || strings.TrimSpace(user) == "" || strings.ContainsAny(strings.TrimSpace(ext), " \t<>\"@;:") {
				return fmt.Errorf("%s: %q is not extension=user; write e.g. \"201=anna@contoso.com, 221=anna@contoso.com\" (the user's id or UPN)", key, clipText(pair))
			}
		}
	case "sip.listen", "teams.webhook_listen":
		_, port, err := net.SplitHostPort(v)
		if err == nil {
			var n int
			n, err = strconv.Atoi(port)
			if err == nil && (n < 0 || n > 65535) {
				err = fmt.Errorf("port %d is out of range", n)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %q is not an address to listen on (host:port, e.g. :8443 or 10.0.0.5:8443): %v", key, clipText(v), err)
		}
	}
	return nil
}

// ValidateUser checks the text of a user record as an admin enters it: no
// field may carry control characters (they would reach terminals and logs),
// fields stay within bounds, a Teams id is an Entra object id (a GUID) and
// a UPN looks like one. User.Validate's rules apply as well.
func ValidateUser(u User) error {
	if err := u.Validate(); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"id", string(u.ID)}, {"extension", u.Extension}, {"teams_id", u.TeamsID},
		{"upn", u.UPN}, {"name", u.DisplayName}, {"profile", u.Profile},
	} {
		if err := CheckText("user "+f.name, f.v); err != nil {
			return err
		}
	}
	if u.ID != UserID(strings.TrimSpace(string(u.ID))) {
		return fmt.Errorf("user id %q: leading or trailing spaces", clipText(string(u.ID)))
	}
	if u.TeamsID != "" && !IsGUID(u.TeamsID) {
		return fmt.Errorf("user %s: teams_id %q is not an Entra object id (a GUID); leave it empty and the bridge looks the user up by upn", clipText(string(u.ID)), clipText(u.TeamsID))
	}
	if u.UPN != "" && strings.ContainsAny(u.UPN, " \t") {
		return fmt.Errorf("user %s: upn %q contains spaces", clipText(string(u.ID)), clipText(u.UPN))
	}
	if u.Profile != "" {
		if err := ValidateProfileName(u.Profile); err != nil {
			return fmt.Errorf("user %s: %w", clipText(string(u.ID)), err)
		}
	}
	return nil
}

// maxText bounds a name, id or setting an admin types; the longest real
// ones (certificate paths, URLs) are far shorter.
const maxText = 4096

// CheckText refuses text that is not valid UTF-8, is longer than 4,096
// bytes or holds a control character (CR, LF, ESC, NUL, tab, DEL, C1),
// naming what it is.
func CheckText(what, s string) error {
	if len(s) > maxText {
		return fmt.Errorf("%s: longer than %d characters", what, maxText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: not valid UTF-8 text", what)
	}
	if i := strings.IndexFunc(s, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%s: contains the control character %U at byte %d (no line breaks, escapes or tabs)", what, r, i)
	}
	return nil
}

// IsGUID reports whether s is a GUID in its usual 8-4-4-4-12 hex form.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// isDomain reports whether s is a DNS name of at least two labels whose
// last label is alphabetic (a verified Entra domain).
func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	for i := 0; i < len(tld); i++ {
		if c := tld[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return len(tld) >= 2
}

// clip shortens text quoted in an error.
func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// checkServerAddress accepts host or host:port with a port in range.
func checkServerAddress(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		if strings.Contains(v, ":") && net.ParseIP(v) == nil {
			return err
		}
		host, port = v, ""
	}
	if host == "" || strings.ContainsAny(host, " /\t@") {
		return fmt.Errorf("the host is missing or holds a space, slash or @")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
	}
	return nil
}
