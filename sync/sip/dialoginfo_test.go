package sip

import (
	"strings"
	"testing"

	psync "github.com/presencebridge/presencebridge/sync"
)

const ctDI = "application/dialog-info+xml"

// Kamailio 5.6.3 pua_dialoginfo as captured on loopback (sip-presence.md §3.3),
// with the state capitalised as Kamailio sends "Trying".
const kamailioEarly = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="3" state="full" entity="sip:200@127.0.0.1">
  <dialog id="padi-6b06e826-e3e-1" call-id="1-3668@127.0.0.1" local-tag="3656U1" remote-tag="3668T1" direction="recipient">
    <state>early</state>
    <remote><identity>sip:100@127.0.0.1</identity><target uri="sip:100@127.0.0.1:5090"/></remote>
    <local><identity>sip:200@127.0.0.1</identity><target uri="sip:200@127.0.0.1:5070"/></local>
  </dialog>
</dialog-info>`

const kamailioTrying = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="2" state="full" entity="sip:200@127.0.0.1">
  <dialog id="padi-6b06e826-e3e-1" call-id="1-3668@127.0.0.1" direction="recipient"><state>Trying</state></dialog>
</dialog-info>`

const kamailioConfirmed = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="4" state="full" entity="sip:200@127.0.0.1">
  <dialog id="padi-6b06e826-e3e-1" call-id="1-3668@127.0.0.1" direction="recipient">
    <state>confirmed</state>
    <remote><identity>sip:100@127.0.0.1</identity><target uri="sip:100@127.0.0.1:5090"/></remote>
    <local><identity>sip:200@127.0.0.1</identity><target uri="sip:200@127.0.0.1:5070"/></local>
  </dialog>
</dialog-info>`

// Kamailio's dummy document with force_dummy_dialog (idle).
const kamailioDummy = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full" entity="sip:200@127.0.0.1">
<dialog id="615293b33c62dec073e05d9421e9f48b" direction="recipient"><state>terminated</state></dialog>
</dialog-info>`

// Asterisk res_pjsip_dialog_info_body_generator (from source, not captured):
// one dialog per extension, id = exten, no call-id; hold marks the local target.
const asteriskHeld = `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="7" state="full" entity="sip:201@pbx.example">
 <dialog id="201"><state>confirmed</state>
  <local><target uri="sip:201@pbx.example"><param pname="+sip.rendering" pvalue="no"/></target></local>
 </dialog>
</dialog-info>`

const asteriskIdle = `<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="8" state="full" entity="sip:201@pbx.example">
 <dialog id="201"><state>terminated</state></dialog>
</dialog-info>`

// Yealink-style (admin guide, not captured): a full document with a stale
// terminated entry next to a live one, then a partial with one change.
const yealinkFull = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:221@pbx">
 <dialog id="65622"><state>terminated</state></dialog>
 <dialog id="65623" call-id="abc@phone" direction="initiator"><state>confirmed</state>
  <remote><target uri="sip:conf@pbx;isfocus"/></remote></dialog>
</dialog-info>`

const yealinkPartial = `<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="2" state="partial" entity="sip:221@pbx">
 <dialog id="65623"><state>terminated</state></dialog>
</dialog-info>`

func parse1(t *testing.T, body string) DialogInfo {
	t.Helper()
	docs, err := ParseDialogInfo(ctDI, []byte(body))
	if err != nil || len(docs) != 1 {
		t.Fatalf("ParseDialogInfo: %v (%d docs)", err, len(docs))
	}
	return docs[0]
}

func TestParseDialogInfo_Shapes(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		version uint64
		calls   []psync.Call
	}{
		{"kamailio trying (capitalised)", kamailioTrying, 2, []psync.Call{{ID: "200/padi-6b06e826-e3e-1", Device: "200", State: psync.CallRinging}}},
		{"kamailio early", kamailioEarly, 3, []psync.Call{{ID: "200/padi-6b06e826-e3e-1", Device: "200", State: psync.CallRinging}}},
		{"kamailio confirmed", kamailioConfirmed, 4, []psync.Call{{ID: "200/padi-6b06e826-e3e-1", Device: "200", State: psync.CallConnected}}},
		{"kamailio dummy", kamailioDummy, 0, nil},
		{"asterisk held", asteriskHeld, 7, []psync.Call{{ID: "200/201", Device: "200", State: psync.CallHeld}}},
		{"asterisk idle", asteriskIdle, 8, nil},
		{"yealink stale terminated next to a conference", yealinkFull, 1, []psync.Call{{ID: "200/65623", Device: "200", State: psync.CallConference, Conference: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := parse1(t, tc.body)
			if !doc.HasVersion || doc.Version != tc.version || !doc.Full {
				t.Fatalf("version %d/%v full %v, want %d full", doc.Version, doc.HasVersion, doc.Full, tc.version)
			}
			var v dialogView
			if r := v.apply(doc); r != applyTaken {
				t.Fatalf("apply = %d", r)
			}
			got := callsOf("200", v.live())
			if len(got) != len(tc.calls) {
				t.Fatalf("calls %+v, want %+v", got, tc.calls)
			}
			for i := range got {
				if got[i] != tc.calls[i] {
					t.Fatalf("call %d = %+v, want %+v", i, got[i], tc.calls[i])
				}
			}
		})
	}
}

func TestDialogView_VersionsAndPartials(t *testing.T) {
	var v dialogView
	if r := v.apply(parse1(t, yealinkFull)); r != applyTaken || len(v.live()) != 1 {
		t.Fatalf("full: %d %v", r, v.live())
	}
	// The same version again (a retransmitted NOTIFY) changes nothing.
	if r := v.apply(parse1(t, yealinkFull)); r != applyIgnored {
		t.Fatalf("repeat: %d", r)
	}
	if r := v.apply(parse1(t, yealinkPartial)); r != applyTaken || len(v.live()) != 0 {
		t.Fatalf("partial: %d %v", r, v.live())
	}
	// A partial after a gap (3 is missing) asks for full state.
	gap := strings.Replace(yealinkPartial, `version="2"`, `version="4"`, 1)
	if r := v.apply(parse1(t, gap)); r != applyResync {
		t.Fatalf("gap: %d", r)
	}
	// A partial without any base asks for full state too.
	var fresh dialogView
	if r := fresh.apply(parse1(t, yealinkPartial)); r != applyResync {
		t.Fatalf("partial first: %d", r)
	}
	// A full document after a gap is fine: it replaces everything.
	full := strings.Replace(kamailioConfirmed, `version="4"`, `version="9"`, 1)
	if r := v.apply(parse1(t, full)); r != applyTaken || len(v.live()) != 1 {
		t.Fatalf("full after gap: %d %v", r, v.live())
	}
	// Older version: ignored.
	if r := v.apply(parse1(t, kamailioEarly)); r != applyIgnored {
		t.Fatalf("older: %d", r)
	}
	// Empty body: idle.
	docs, err := ParseDialogInfo("", nil)
	if err != nil || len(docs) != 1 {
		t.Fatal(err)
	}
	if r := v.apply(docs[0]); r != applyTaken || len(v.live()) != 0 {
		t.Fatalf("empty: %d %v", r, v.live())
	}
}

func TestParseDialogInfo_EmptyDocIsIdle(t *testing.T) {
	doc := parse1(t, `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="5" state="full" entity="sip:221@pbx"></dialog-info>`)
	if !doc.Full || len(doc.Dialogs) != 0 || doc.Version != 5 {
		t.Fatalf("%+v", doc)
	}
}

// An RFC 4662 list as Kamailio's rls sends it: rlmi first, then one
// dialog-info part per resource.
func TestParseDialogInfo_ResourceList(t *testing.T) {
	body := "--b1\r\nContent-Type: application/rlmi+xml;charset=\"UTF-8\"\r\nContent-ID: <r@x>\r\n\r\n" +
		`<list xmlns="urn:ietf:params:xml:ns:rlmi" uri="sip:team@pbx" version="0" fullState="true"><resource uri="sip:200@pbx"><instance id="i1" state="active" cid="a@x"/></resource></list>` +
		"\r\n--b1\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <a@x>\r\nContent-Type: application/dialog-info+xml;charset=\"UTF-8\"\r\n\r\n" +
		kamailioConfirmed + "\r\n--b1--\r\n"
	docs, err := ParseDialogInfo(`multipart/related;type="application/rlmi+xml";start="<r@x>";boundary="b1"`, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || len(docs[0].Dialogs) != 1 || docs[0].Dialogs[0].State != stateConfirmed {
		t.Fatalf("%+v", docs)
	}
}

func TestParseDialogInfo_Hostile(t *testing.T) {
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	many := strings.Repeat(`<dialog id="x"><state>confirmed</state></dialog>`, maxDialogs+1)
	for name, body := range map[string]string{
		"too large":   `<dialog-info version="1">` + strings.Repeat(" ", maxBodySize) + `</dialog-info>`,
		"too deep":    `<dialog-info version="1">` + deep + `</dialog-info>`,
		"too many":    `<dialog-info version="1">` + many + `</dialog-info>`,
		"bad version": `<dialog-info version="-1"/>`,
		"wrong root":  `<presence/>`,
		"truncated":   `<dialog-info version="1"><dialog id="1">`,
		"entity bomb": `<!DOCTYPE d [<!ENTITY a "aaaa">]><dialog-info version="1">&a;</dialog-info>`,
	} {
		if _, err := ParseDialogInfo(ctDI, []byte(body)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ParseDialogInfo("application/pidf+xml", []byte(kamailioEarly)); err == nil {
		t.Error("wrong content type taken")
	}
}

func FuzzParseDialogInfo(f *testing.F) {
	for _, s := range []string{kamailioTrying, kamailioEarly, kamailioConfirmed, kamailioDummy, asteriskHeld, asteriskIdle, yealinkFull, yealinkPartial, ""} {
		f.Add(ctDI, []byte(s))
	}
	f.Add(`multipart/related;boundary="b1"`, []byte("--b1\r\nContent-Type: application/dialog-info+xml\r\n\r\n"+yealinkFull+"\r\n--b1--\r\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		docs, err := ParseDialogInfo(ct, body)
		if err != nil {
			return
		}
		var v dialogView
		for _, d := range docs {
			if len(d.Dialogs) > maxDialogs {
				t.Fatalf("%d dialogs kept", len(d.Dialogs))
			}
			v.apply(d)
			for _, dl := range v.live() {
				if dl.State == stateTerminated || dl.ID == "" {
					t.Fatalf("dead or id-less dialog kept live: %+v", dl)
				}
			}
			if len(v.dialogs) > maxDialogs || len(v.order) != len(v.dialogs) {
				t.Fatalf("view out of step: %d/%d", len(v.order), len(v.dialogs))
			}
		}
	})
}
