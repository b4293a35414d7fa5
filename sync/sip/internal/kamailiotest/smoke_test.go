package kamailiotest

import (
	"testing"
	"time"
	"os/exec"
)

func TestSmoke(t *testing.T) {
	uas := UAS(t)
	k := Start(t, Options{UAS: uas.Addr()})
	t.Logf("start %v rpc %s sip %s", k.StartTook, k.RPCURL(), k.SIPAddr())
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"htable.setxi","params":["teamsbusy","201",1,2],"id":1}`,
		`{"jsonrpc":"2.0","method":"htable.get","params":["teamsbusy","201"],"id":2}`,
		`{"jsonrpc":"2.0","method":"htable.get","params":["teamsbusy","999"],"id":3}`,
		`{"jsonrpc":"2.0","method":"htable.get","params":["nosuch","999"],"id":4}`,
		`{"jsonrpc":"2.0","method":"htable.listTables","id":5}`,
		`{"jsonrpc":"2.0","method":"htable.delete","params":["teamsbusy","999"],"id":6}`,
		`{"jsonrpc":"2.0","method":"htable.delete","params":["nosuch","999"],"id":7}`,
		`{"jsonrpc":"2.0","method":"htable.seti","params":["teamsbusy","202",1],"id":8}`,
		`{"jsonrpc":"2.0","method":"htable.setex","params":["teamsbusy","202",600],"id":9}`,
		`{"jsonrpc":"2.0","method":"htable.dump","params":["teamsbusy"],"id":10}`,
		`{"jsonrpc":"2.0","method":"htable.seti","params":["nosuch","202",1],"id":11}`,
		`{"jsonrpc":"2.0","method":"htable.stats","id":12}`,
		`{"jsonrpc":"2.0","method":"nosuch.method","id":13}`,
	} {
		out, err := exec.Command("curl", "-sS", "-i", "-d", body, k.RPCURL()).CombinedOutput()
		t.Logf("%s\n-> %s %v", body, out, err)
	}
	t0 := time.Now()
	code := k.Call(t, "100", "201", 0)
	t.Logf("call 201 busy: %d in %v", code, time.Since(t0))
	t0 = time.Now()
	code = k.Call(t, "100", "203", 500*time.Millisecond)
	t.Logf("call 203: %d in %v", code, time.Since(t0))
	time.Sleep(2500 * time.Millisecond)
	out, _ := exec.Command("curl", "-sS", "-d", `{"jsonrpc":"2.0","method":"htable.get","params":["teamsbusy","201"],"id":2}`, k.RPCURL()).CombinedOutput()
	t.Logf("after ttl get: %s", out)
	t0 = time.Now()
	code = k.Call(t, "100", "201", 0)
	t.Logf("call 201 after ttl: %d in %v", code, time.Since(t0))
}
