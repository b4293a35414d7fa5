package asterisk_test

import (
	"bufio"
	"bytes"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	psync "github.com/presencebridge/presencebridge/sync"
	"github.com/presencebridge/presencebridge/sync/asterisk"
)

// hostileAMI greets, accepts any challenge login, then writes payload and
// closes.
func hostileAMI(t *testing.T, payload []byte) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			wg.Go(func() {
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(nc)
				nc.Write([]byte("Asterisk Call Manager/9.0.0\r\n"))
				// Two actions: Challenge, then Login with the key.
				for _, answer := range []string{"Challenge: 123456789", "Message: Authentication accepted"} {
					id := ""
					for {
						l, err := br.ReadString('\n')
						if err != nil {
							return
						}
						l = strings.TrimSpace(l)
						if v, ok := strings.CutPrefix(l, "ActionID: "); ok {
							id = v
						}
						if l == "" {
							break
						}
					}
					nc.Write([]byte("Response: Success\r\nActionID: " + id + "\r\n" + answer + "\r\n\r\n"))
				}
				nc.Write(payload)
			})
		}
	})
	return ln.Addr().String(), &conns
}

func TestHostileAMI(t *testing.T) {
	big := bytes.Repeat([]byte("A"), 10<<20)
	keys := bytes.Repeat([]byte("X-Key: v\r\n"), 1_000_000)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"10 MB line", append(append([]byte("Event: DeviceStateChange\r\nDevice: "), big...), "\r\n\r\n"...), "longer than"},
		{"a million keys", append([]byte("Event: X\r\n"), keys...), "more than"},
		{"garbage", []byte("\x00\xff\xfe this is not AMI\r\n\r\n"), "Key: Value"},
		{"closed mid-message", []byte("Event: DeviceStateChange\r\nDevice: PJSIP/201\r\nSta"), "middle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, conns := hostileAMI(t, tc.payload)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			logs := &syncBuf{}
			c, err := asterisk.New(asterisk.Config{Host: addr, User: "u", Secret: "s", Logger: slog.New(slog.NewTextHandler(logs, nil)),
				ReconnectMin: 50 * time.Millisecond, ReconnectMax: 50 * time.Millisecond, ActionTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			w := newWatcher(t)
			w.run(c, anna)
			w.waitFor("the violation reported", func(w *watcher) bool {
				for _, h := range w.health {
					if !h.Healthy && strings.Contains(h.Detail, tc.want) {
						return true
					}
				}
				return false
			})
			waitSim(t, "a reconnect", func() bool { return conns.Load() >= 2 })
			if !strings.Contains(logs.String(), tc.want) {
				t.Errorf("the log does not say what was wrong:\n%s", logs.String())
			}
			runtime.ReadMemStats(&after)
			// Two attempts read at most a line buffer and 4096 fields each;
			// the peer sent up to 10 MB.
			if got := after.TotalAlloc - before.TotalAlloc; got > 6<<20 {
				t.Errorf("allocated %d bytes reading a hostile peer", got)
			}
		})
	}
}

// Unknown events, answers nobody asked for and events for unknown devices
// are ignored: the connection stays and later events still count.
func TestUnknownEventsIgnored(t *testing.T) {
	sim := startSim(t)
	_, w := connect(t, testConfig(sim), anna)
	sim.Inject([]byte("Event: SomethingNew\r\nPrivilege: call,all\r\nWhatever: 1\r\n\r\n" +
		"Response: Success\r\nActionID: pb-zzzz\r\n\r\n" +
		"Event: DeviceStateChange\r\nDevice: PJSIP/999\r\nState: INUSE\r\n\r\n" +
		"Event: DeviceStateChange\r\nDevice: Custom:DEVDND201\r\nState: BUSY\r\n\r\n" +
		"Event: DeviceStateChange\r\nState: INUSE\r\n\r\n" +
		"Event: ConfbridgeJoin\r\nChannel: \r\n\r\n"))
	sim.Answer("PJSIP/201")
	w.waitFor("the call after the noise", func(w *watcher) bool { return len(w.calls("anna")) == 1 })
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.synced != 1 {
		t.Fatalf("noise made the connector resync (%d syncs): %s", w.synced, w.healthDetails())
	}
	if w.dnd("anna", true) {
		t.Fatal("Custom:DEVDND was read as the user's DND")
	}
	for _, c := range w.calls("anna") {
		if c.Device != "PJSIP/201" {
			t.Fatalf("call on %s", c.Device)
		}
	}
}

// A slow PBX: answers within the action timeout still work.
func TestSlowAnswers(t *testing.T) {
	sim := startSim(t)
	sim.SetDelay(30 * time.Millisecond)
	c, w := connect(t, testConfig(sim), anna)
	if err := c.SetDeviceProtection(bg, anna, "PJSIP/201", true); err != nil {
		t.Fatal(err)
	}
	w.waitFor("on", func(w *watcher) bool { return w.dnd("anna", true) })
	sim.SetDelay(3 * time.Second) // beyond ActionTimeout (2 s)
	err := c.RestoreDeviceProtection(bg, anna, "PJSIP/201", true, false)
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("a write without an answer: %v", err)
	}
	var ns *psync.NotSentError
	if asNotSent(err, &ns) {
		t.Fatal("a write that went out was marked as not sent")
	}
	sim.SetDelay(0)
}

func asNotSent(err error, target **psync.NotSentError) bool {
	for e := err; e != nil; {
		if ns, ok := e.(*psync.NotSentError); ok {
			*target = ns
			return true
		}
		u, ok := e.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		e = u.Unwrap()
	}
	return false
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
