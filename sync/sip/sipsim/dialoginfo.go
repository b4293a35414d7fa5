package sipsim

import (
	"fmt"
	"strings"
)

// dummyDialogID is the id Kamailio's presence_dialoginfo puts in the dummy
// "terminated" dialog it sends for an idle entity (force_dummy_dialog).
const dummyDialogID = "615293b33c62dec073e05d9421e9f48b"

// aggregate is an extension's state as Asterisk's hint sees it: INUSE (or
// ONHOLD when every connected call is held) wins over RINGING.
type aggregate struct {
	state   callState
	held    bool
	ringing *call
}

func aggregateAsterisk(calls []*call) aggregate {
	var a aggregate
	a.state = stateTerminated
	connected, held := 0, 0
	for _, c := range calls {
		switch c.state {
		case stateConfirmed:
			connected++
			if c.held {
				held++
			}
		case stateTrying, stateEarly:
			if a.ringing == nil {
				a.ringing = c
			}
		}
	}
	switch {
	case connected > 0:
		a.state = stateConfirmed
		a.held = held == connected
		a.ringing = nil
	case a.ringing != nil:
		a.state = stateEarly
	}
	return a
}

// key identifies what an Asterisk-style body would say, so that a change
// that leaves the hint state alone sends nothing.
func (a aggregate) key() string {
	id := ""
	if a.ringing != nil {
		id = a.ringing.id
	}
	return fmt.Sprintf("%s/%v/%s", a.state.word(), a.held, id)
}

// dialogBodyLocked renders the dialog-info document sub gets next, and
// advances sub's version. changed is the call that moved (nil for the
// first NOTIFY of a subscription or of a refresh: those are always full).
func (s *Server) dialogBodyLocked(e *extension, sub *subscription, changed *call) string {
	version := sub.version
	sub.version++
	entity := "sip:" + e.name + "@" + s.domainLocked()
	var b strings.Builder
	state := "full"
	if s.opts.Style == StylePartial && changed != nil && !sub.needFull {
		state = "partial"
	}
	sub.needFull = false
	b.WriteString(`<?xml version="1.0"?>` + "\n")
	fmt.Fprintf(&b, `<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="%d" state="%s" entity="%s">`+"\n", version, state, entity)
	switch {
	case s.opts.Style == StyleAsterisk:
		s.writeAsteriskDialog(&b, e)
	case state == "partial":
		s.writeDialog(&b, e, changed)
	default:
		for _, c := range e.calls {
			s.writeDialog(&b, e, c)
		}
		if len(e.calls) == 0 && s.opts.Style == StyleKamailio {
			fmt.Fprintf(&b, "  <dialog id=\"%s\" direction=\"recipient\">\n    <state>terminated</state>\n  </dialog>\n", dummyDialogID)
		}
	}
	b.WriteString("</dialog-info>\n")
	return b.String()
}

// writeDialog writes one call the way pua_dialoginfo (include_localremote)
// does: tags while the call is being set up, none once confirmed.
func (s *Server) writeDialog(b *strings.Builder, e *extension, c *call) {
	dom := s.domainLocked()
	fmt.Fprintf(b, `  <dialog id="%s" call-id="%s"`, c.dialogID, xmlEscape(c.sipCallID))
	if c.state == stateTrying || c.state == stateEarly {
		fmt.Fprintf(b, ` local-tag="%s" remote-tag="%s"`, c.localTag, c.remoteTag)
	}
	b.WriteString(` direction="recipient">` + "\n")
	fmt.Fprintf(b, "    <state>%s</state>\n", c.state.word())
	fmt.Fprintf(b, "    <remote><identity>sip:%s@%s</identity><target uri=\"sip:%s@%s\"/></remote>\n",
		xmlEscape(c.remote), dom, xmlEscape(c.remote), dom)
	b.WriteString("    <local><identity>sip:" + e.name + "@" + dom + "</identity>")
	s.writeLocalTarget(b, e, c.held && c.state == stateConfirmed, c.conf && c.state == stateConfirmed)
	b.WriteString("</local>\n  </dialog>\n")
}

func (s *Server) writeLocalTarget(b *strings.Builder, e *extension, held, focus bool) {
	uri := "sip:" + e.name + "@" + s.domainLocked()
	if focus {
		uri += ";isfocus"
	}
	if !held && !focus {
		fmt.Fprintf(b, `<target uri="%s"/>`, uri)
		return
	}
	fmt.Fprintf(b, `<target uri="%s">`, uri)
	if held {
		b.WriteString(`<param pname="+sip.rendering" pvalue="no"/>`)
	}
	if focus {
		b.WriteString(`<param pname="isfocus" pvalue="true"/>`)
	}
	b.WriteString(`</target>`)
}

// writeAsteriskDialog writes the single dialog Asterisk's
// res_pjsip_dialog_info_body_generator sends: call-id, tags, direction and
// the parties only while ringing (for pickup), the local target with
// +sip.rendering=no when on hold. Asterisk has no conference notion here.
func (s *Server) writeAsteriskDialog(b *strings.Builder, e *extension) {
	a := aggregateAsterisk(e.calls)
	dom := s.domainLocked()
	if a.state == stateEarly {
		c := a.ringing
		fmt.Fprintf(b, `  <dialog id="%s" call-id="%s" local-tag="%s" remote-tag="%s" direction="recipient">`+"\n",
			e.name, xmlEscape(c.sipCallID), c.localTag, c.remoteTag)
		fmt.Fprintf(b, "    <remote><identity display=\"%s\">sip:%s@%s</identity><target uri=\"sip:%s@%s\"/></remote>\n",
			xmlEscape(c.remote), xmlEscape(c.remote), dom, xmlEscape(c.remote), dom)
		fmt.Fprintf(b, "    <local><identity display=\"%s\">sip:%s@%s</identity><target uri=\"sip:%s@%s\"/></local>\n",
			e.name, e.name, dom, e.name, dom)
		b.WriteString("    <state>early</state>\n  </dialog>\n")
		return
	}
	fmt.Fprintf(b, "  <dialog id=\"%s\">\n    <state>%s</state>\n", e.name, a.state.word())
	if a.held {
		fmt.Fprintf(b, "    <local><target uri=\"sip:%s@%s\"><param pname=\"+sip.rendering\" pvalue=\"no\"/></target></local>\n", e.name, dom)
	}
	b.WriteString("  </dialog>\n")
}

func xmlEscape(v string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return r.Replace(v)
}
