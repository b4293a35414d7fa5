package kamailiotest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawUA is a bare-bones SIP user agent over UDP, enough to SUBSCRIBE and
// answer NOTIFYs: it shows that the harness serves the reader's tests
// without depending on the reader.
type rawUA struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr
	port   int
}

type sipMsg struct {
	first   string
	code    int // responses only
	method  string
	headers map[string][]string // lower-case names
	body    string
	raw     string
}

func (m *sipMsg) header(name string) string {
	if v := m.headers[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func newRawUA(t *testing.T, server string) *rawUA {
	t.Helper()
	sa, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUA{t: t, conn: c, server: sa, port: c.LocalAddr().(*net.UDPAddr).Port}
}

func token() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (u *rawUA) send(msg string) {
	u.t.Helper()
	msg = strings.ReplaceAll(strings.TrimLeft(msg, "\n"), "\n", "\r\n")
	if _, err := u.conn.WriteToUDP([]byte(msg), u.server); err != nil {
		u.t.Fatal(err)
	}
}

// next returns the next message, answering NOTIFYs 200 on the way when
// ack is set (the caller still sees them).
func (u *rawUA) next(timeout time.Duration) *sipMsg {
	u.t.Helper()
	buf := make([]byte, 65535)
	u.conn.SetReadDeadline(time.Now().Add(timeout))
	n, _, err := u.conn.ReadFromUDP(buf)
	if err != nil {
		u.t.Fatalf("no SIP message within %v: %v", timeout, err)
	}
	m, err := parseSIP(string(buf[:n]))
	if err != nil {
		u.t.Fatalf("%v:\n%s", err, buf[:n])
	}
	if m.method == "NOTIFY" {
		u.reply(m, 200, "OK")
	}
	return m
}

// response waits for a response to the request with this CSeq.
func (u *rawUA) response(cseq string, timeout time.Duration) *sipMsg {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := u.next(time.Until(deadline))
		if m.code >= 200 && m.header("CSeq") == cseq {
			return m
		}
	}
}

// notifyMatching waits for a NOTIFY whose body matches re.
func (u *rawUA) notifyMatching(re *regexp.Regexp, timeout time.Duration) *sipMsg {
	u.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := u.next(time.Until(deadline))
		if m.method == "NOTIFY" && re.MatchString(m.body) {
			return m
		}
	}
}

func (u *rawUA) reply(req *sipMsg, code int, reason string) {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\n", code, reason)
	for _, v := range req.headers["via"] {
		fmt.Fprintf(&b, "Via: %s\n", v)
	}
	for _, h := range []string{"From", "To", "Call-ID", "CSeq"} {
		fmt.Fprintf(&b, "%s: %s\n", h, req.header(h))
	}
	b.WriteString("Content-Length: 0\n\n")
	u.send(b.String())
}

func parseSIP(s string) (*sipMsg, error) {
	head, body, ok := strings.Cut(s, "\r\n\r\n")
	if !ok {
		return nil, fmt.Errorf("no end of headers")
	}
	lines := strings.Split(head, "\r\n")
	m := &sipMsg{first: lines[0], headers: map[string][]string{}, body: body, raw: s}
	if rest, ok := strings.CutPrefix(lines[0], "SIP/2.0 "); ok {
		m.code, _ = strconv.Atoi(strings.SplitN(rest, " ", 2)[0])
	} else {
		m.method = strings.SplitN(lines[0], " ", 2)[0]
	}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		switch name { // compact forms Kamailio may use
		case "v":
			name = "via"
		case "f":
			name = "from"
		case "t":
			name = "to"
		case "i":
			name = "call-id"
		}
		m.headers[name] = append(m.headers[name], strings.TrimSpace(value))
	}
	return m, nil
}

// subscription is one SUBSCRIBE dialog of the raw UA.
type subscription struct {
	ua      *rawUA
	ext     string
	event   string
	callID  string
	fromTag string
	toTag   string
	cseq    int
	auth    string // Proxy-Authorization for the next request
}

func (u *rawUA) subscription(ext, event string) *subscription {
	return &subscription{ua: u, ext: ext, event: event, callID: token() + "@127.0.0.1", fromTag: token()}
}

// send sends a SUBSCRIBE in this dialog and returns the final response.
func (s *subscription) send(expires int) *sipMsg {
	s.ua.t.Helper()
	s.cseq++
	to := fmt.Sprintf("<sip:%s@127.0.0.1>", s.ext)
	if s.toTag != "" {
		to += ";tag=" + s.toTag
	}
	accept := "application/dialog-info+xml"
	if s.event == "presence" {
		accept = "application/pidf+xml"
	}
	auth := ""
	if s.auth != "" {
		auth = "Proxy-Authorization: " + s.auth + "\n"
	}
	s.ua.send(fmt.Sprintf(`
SUBSCRIBE sip:%s@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport
Max-Forwards: 70
From: <sip:watcher@127.0.0.1>;tag=%s
To: %s
Call-ID: %s
CSeq: %d SUBSCRIBE
Contact: <sip:watcher@127.0.0.1:%d>
Event: %s
Accept: %s
Expires: %d
%sContent-Length: 0

`, s.ext, s.ua.port, token(), s.fromTag, to, s.callID, s.cseq, s.ua.port, s.event, accept, expires, auth))
	r := s.ua.response(fmt.Sprintf("%d SUBSCRIBE", s.cseq), 5*time.Second)
	if r.code/100 == 2 && s.toTag == "" {
		if _, tag, ok := strings.Cut(r.header("To"), ";tag="); ok {
			s.toTag = strings.SplitN(tag, ";", 2)[0]
		}
	}
	return r
}

var challengeParam = regexp.MustCompile(`(\w+)="?([^",]*)"?`)

// authorize computes a digest answer (RFC 2617, MD5, qop=auth when
// offered) to a 407 for the next SUBSCRIBE.
func (s *subscription) authorize(challenge *sipMsg, user, password string) {
	h := challenge.header("Proxy-Authenticate")
	if !strings.HasPrefix(h, "Digest ") {
		s.ua.t.Fatalf("407 without a Digest challenge: %q", h)
	}
	p := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(h[len("Digest "):], -1) {
		p[strings.ToLower(m[1])] = m[2]
	}
	uri := fmt.Sprintf("sip:%s@127.0.0.1", s.ext)
	ha1 := md5hex(user + ":" + p["realm"] + ":" + password)
	ha2 := md5hex("SUBSCRIBE:" + uri)
	if strings.Contains(p["qop"], "auth") {
		cnonce, nc := token(), "00000001"
		resp := md5hex(ha1 + ":" + p["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + ha2)
		s.auth = fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s"`,
			user, p["realm"], p["nonce"], uri, resp, nc, cnonce)
		return
	}
	resp := md5hex(ha1 + ":" + p["nonce"] + ":" + ha2)
	s.auth = fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`,
		user, p["realm"], p["nonce"], uri, resp)
}

var (
	confirmed  = regexp.MustCompile(`(?i)<state[^>]*>\s*confirmed\s*</state>`)
	terminated = regexp.MustCompile(`(?i)<state[^>]*>\s*terminated\s*</state>`)
	anyDialog  = regexp.MustCompile(`(?i)<dialog-info`)
)

func TestDialogNotifyDuringCall(t *testing.T) {
	uas := UAS(t)
	k := Start(t, Options{UAS: uas.Addr()})
	t.Logf("kamailio started in %v", k.StartTook)
	ua := newRawUA(t, k.SIPAddr())
	sub := ua.subscription("201", "dialog")
	if r := sub.send(600); r.code != 200 && r.code != 202 {
		t.Fatalf("SUBSCRIBE answered %s", r.first)
	}
	// the first NOTIFY is the idle document
	first := ua.notifyMatching(anyDialog, 5*time.Second)
	if confirmed.MatchString(first.body) {
		t.Fatalf("idle NOTIFY shows a confirmed dialog:\n%s", first.body)
	}
	if ct := first.header("Content-Type"); ct != "application/dialog-info+xml" {
		t.Fatalf("NOTIFY Content-Type %q", ct)
	}

	began := time.Now()
	call := k.StartCall(t, "100", "201", 1500*time.Millisecond)
	n := ua.notifyMatching(confirmed, 10*time.Second)
	t.Logf("confirmed NOTIFY %v after the INVITE:\n%s", time.Since(began), n.body)
	if !strings.Contains(n.body, `entity="sip:201@127.0.0.1"`) {
		t.Fatalf("confirmed NOTIFY is not about 201:\n%s", n.body)
	}
	if code := call.Wait(t); code != 200 {
		t.Fatalf("call answered %d, want 200", code)
	}
	// after the BYE the dialog ends for the watcher too
	n = ua.notifyMatching(terminated, 10*time.Second)
	if confirmed.MatchString(n.body) {
		t.Fatalf("NOTIFY after the hang-up still shows a confirmed dialog:\n%s", n.body)
	}
	t.Logf("call took %v; terminated NOTIFY %v after the INVITE", call.Took, time.Since(began))
}

func TestAuthAndMaxExpires(t *testing.T) {
	k := Start(t, Options{Auth: &Credentials{User: "bridge", Password: "s3cret"}, MaxExpires: 60 * time.Second})
	ua := newRawUA(t, k.SIPAddr())

	sub := ua.subscription("201", "dialog")
	r := sub.send(600)
	if r.code != 407 {
		t.Fatalf("SUBSCRIBE without credentials answered %s, want 407", r.first)
	}
	sub.authorize(r, "bridge", "wrong")
	if r = sub.send(600); r.code != 407 {
		t.Fatalf("SUBSCRIBE with a wrong password answered %s, want 407", r.first)
	}
	sub.authorize(r, "bridge", "s3cret")
	r = sub.send(600)
	if r.code != 200 && r.code != 202 {
		t.Fatalf("SUBSCRIBE with the right password answered %s", r.first)
	}
	if got := r.header("Expires"); got != "60" {
		t.Fatalf("granted Expires %q, want 60 (MaxExpires)", got)
	}
	// a short refresh is granted as asked (no 423), on the same credentials'
	// fresh challenge
	r = sub.send(3)
	if r.code == 407 {
		sub.authorize(r, "bridge", "s3cret")
		r = sub.send(3)
	}
	if r.code/100 != 2 || r.header("Expires") != "3" {
		t.Fatalf("refresh asking 3 s answered %s, Expires %q", r.first, r.header("Expires"))
	}
}

func TestRestartLosesSubscriptions(t *testing.T) {
	k := Start(t, Options{})
	sipAddr, rpcURL := k.SIPAddr(), k.RPCURL()
	ua := newRawUA(t, k.SIPAddr())
	sub := ua.subscription("201", "presence")
	if r := sub.send(600); r.code/100 != 2 {
		t.Fatalf("SUBSCRIBE answered %s", r.first)
	}
	ua.notifyMatching(regexp.MustCompile(`<presence`), 5*time.Second)
	if r := sub.send(600); r.code/100 != 2 {
		t.Fatalf("refresh before the restart answered %s", r.first)
	}

	k.Restart(t)
	t.Logf("restart took %v", k.StartTook)
	if k.SIPAddr() != sipAddr || k.RPCURL() != rpcURL {
		t.Fatalf("addresses changed across Restart: %s %s -> %s %s", sipAddr, rpcURL, k.SIPAddr(), k.RPCURL())
	}
	if r := sub.send(600); r.code != 481 {
		t.Fatalf("refresh after the restart answered %s, want 481 (subscription lost)", r.first)
	}

	k.Kill()
	resp, err := (&http.Client{Timeout: time.Second}).Post(rpcURL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"core.version","id":1}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("RPC still answers after Kill: %s", resp.Status)
	}
}

func TestFinalCode(t *testing.T) {
	trace := "----\nUDP message sent (300 bytes):\n\nINVITE sip:201@127.0.0.1 SIP/2.0\nCSeq: 1 INVITE\n\n" +
		"----\nUDP message received [200] bytes :\n\nSIP/2.0 100 Trying\nCSeq: 1 INVITE\n\n" +
		"----\nUDP message received [200] bytes :\n\nSIP/2.0 486 Busy Here\nCSeq: 1 INVITE\n\n" +
		"----\nUDP message received [200] bytes :\n\nSIP/2.0 200 OK\nCSeq: 2 BYE\n\n"
	path := t.TempDir() + "/msg"
	if err := writeFile(path, trace); err != nil {
		t.Fatal(err)
	}
	if code, err := finalCode(path); err != nil || code != 486 {
		t.Fatalf("finalCode = %d, %v; want 486 (a BYE's 200 is not the INVITE's answer)", code, err)
	}
	if err := writeFile(path, "SIP/2.0 180 Ringing\nCSeq: 1 INVITE\n\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := finalCode(path); err == nil {
		t.Fatal("finalCode found a final answer in a trace with only 180")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

// A phone registered for an extension gets its calls; an extension without
// one goes to Options.UAS.
func TestRegisteredContactGetsTheCall(t *testing.T) {
	fallback, phone := UAS(t), UAS(t)
	k := Start(t, Options{UAS: fallback.Addr()})
	ua := newRawUA(t, k.SIPAddr())
	callID, tag := token(), token()
	ua.send(fmt.Sprintf(`
REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s;rport
Max-Forwards: 70
From: <sip:201@127.0.0.1>;tag=%s
To: <sip:201@127.0.0.1>
Call-ID: %s@127.0.0.1
CSeq: 1 REGISTER
Contact: <sip:201@%s>
Expires: 300
Content-Length: 0

`, ua.port, token(), tag, callID, phone.Addr()))
	if r := ua.response("1 REGISTER", 5*time.Second); r.code != 200 {
		t.Fatalf("REGISTER answered %s", r.first)
	}
	if code := k.Call(t, "100", "201", 0); code != 200 {
		t.Fatalf("call to registered 201 answered %d", code)
	}
	if code := k.Call(t, "100", "202", 0); code != 200 {
		t.Fatalf("call to unregistered 202 answered %d", code)
	}
	if p, f := phone.Invites(), fallback.Invites(); p != 1 || f != 1 {
		t.Fatalf("INVITEs: registered phone %d, fallback UAS %d; want 1 and 1", p, f)
	}
}
