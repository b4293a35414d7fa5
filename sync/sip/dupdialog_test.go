package sip

import (
	"fmt"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
)

// Kamailio's presence_dialoginfo builds each NOTIFY from every publication
// pua_dialoginfo made for the extension. When two Kamailio workers take a
// call's first PUBLISHes (Trying, early) at the same moment, pua makes two
// publications for one dialog, and from then on the document lists that
// dialog twice under the same id: the live one (confirmed, later
// terminated) and a stale early one that is never updated. Captured from
// Kamailio 5.6.3 (children=2) in BenchmarkSIPNotifyToSetPresence, where 7 of
// 50 calls were lost this way: the answered call must count, and the ended
// one must not linger as ringing.
func TestDialogInfo_SameDialogTwiceKamailio(t *testing.T) {
	doc := func(version int, first, second string) []byte {
		entry := `<dialog id="padi-6b15fd6a-2751-71" call-id="1-10560@127.0.0.1" direction="recipient"><state>%s</state>` +
			`<remote><identity>sip:300@127.0.0.1</identity></remote><local><identity>sip:201@127.0.0.1</identity><target uri="sip:201@127.0.0.1"/></local></dialog>`
		return []byte(fmt.Sprintf(`<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="%d" state="full" entity="sip:201@127.0.0.1">`+
			`<dialog id="padi-6b15fd6a-2750-d" call-id="1-10311@127.0.0.1" direction="recipient"><state>terminated</state></dialog>`+
			entry+entry+`</dialog-info>`, version, first, second))
	}
	calls := func(v *dialogView, body []byte) []psync.Call {
		t.Helper()
		docs, err := ParseDialogInfo("application/dialog-info+xml", body)
		if err != nil || len(docs) != 1 {
			t.Fatalf("parse: %v (%d docs)", err, len(docs))
		}
		if r := v.apply(docs[0]); r != applyTaken {
			t.Fatalf("apply: %v", r)
		}
		return callsOf("201", v.live())
	}
	for _, order := range [][2]string{{"confirmed", "early"}, {"early", "confirmed"}} {
		v := &dialogView{}
		got := calls(v, doc(200, order[0], order[1]))
		if len(got) != 1 || got[0].State != psync.CallConnected {
			t.Errorf("dialog listed %s then %s: calls %+v, want one connected call", order[0], order[1], got)
		}
		got = calls(v, doc(201, "terminated", "early"))
		if len(got) != 0 {
			t.Errorf("after the hang-up (terminated beside the stale early): calls %+v, want none", got)
		}
	}
}
