package sipsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParsePIDF(f *testing.F) {
	f.Add([]byte(onThePhone))
	f.Add([]byte(`<presence><tuple><status><basic>open</basic><ep:activities><ep:activity>busy</ep:activity></ep:activities></status></tuple></presence>`))
	f.Add([]byte(`<presence><dm:person><rpid:activities><rpid:busy/><rpid:meeting/></rpid:activities><dm:note>x</dm:note></dm:person></presence>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePIDF(body)
		if err != nil && (p.Basic != "" || p.Note != "" || len(p.Activities) != 0) {
			t.Fatalf("error with a result: %+v", p)
		}
	})
}

// FuzzRPC feeds arbitrary request bodies to the JSON-RPC endpoint: every
// one gets an answer with a status, none panics.
func FuzzRPC(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","method":"htable.seti","params":["teamsbusy","201",1],"id":1}`,
		`{"jsonrpc":"2.0","method":"htable.setxi","params":{"t":"teamsbusy","k":"201","v":1,"e":5},"id":"a"}`,
		`{"jsonrpc":"2.0","method":"htable.dump","params":["teamsbusy"],"id":null}`,
		`{"jsonrpc":"2.0","method":"htable.get","params":[],"id":1}`,
		`[1,2,3]`, `null`, `{"params":"x"}`,
	} {
		f.Add(seed)
	}
	sim := New(Options{MaxBody: 4096})
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		sim.serveRPC(rec, httptest.NewRequest(http.MethodPost, "/RPC", strings.NewReader(body)))
		if rec.Code == 0 {
			t.Fatal("no status")
		}
	})
}
