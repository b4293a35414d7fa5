package sip

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
)

// Bounds of one NOTIFY body. A PBX sends a few hundred bytes per dialog; the
// limits only stop a hostile or broken peer from making the bridge allocate
// without end.
const (
	maxBodySize   = 64 << 10 // bytes of one body (all parts of a list together)
	maxDialogs    = 256      // dialogs in one document, and in the merged state
	maxXMLDepth   = 16       // element nesting (dialog-info needs 5)
	maxListParts  = 64       // parts of one RFC 4662 multipart body
	maxFieldBytes = 1024     // text of one attribute or element kept
)

// Dialog states of RFC 4235, lower case. PBXs differ in case (Kamailio sends
// "Trying"), so parsed states are folded.
const (
	stateTrying     = "trying"
	stateProceeding = "proceeding"
	stateEarly      = "early"
	stateConfirmed  = "confirmed"
	stateTerminated = "terminated"
)

// Dialog is one <dialog> of a dialog-info document, reduced to what the
// bridge uses.
type Dialog struct {
	ID        string
	CallID    string
	Direction string
	State     string // lower case; one of the state* constants or what the peer sent
	// Held: the local target carries +sip.rendering=no (RFC 4235 §4.1.6.2;
	// Asterisk and Kamailio mark a held call this way).
	Held bool
	// Conference: a target carries the isfocus feature tag.
	Conference bool
}

// live reports whether the dialog is still a call or the start of one.
func (d Dialog) live() bool { return d.State != stateTerminated }

// DialogInfo is one parsed application/dialog-info+xml document.
type DialogInfo struct {
	// Version is the document's version attribute; HasVersion is false for
	// an empty body (Kamailio's idle NOTIFY without force_dummy_dialog).
	Version    uint64
	HasVersion bool
	// Full is state="full" (and an empty body, which means "idle").
	Full    bool
	Entity  string
	Dialogs []Dialog
}

// ErrBodyTooLarge is returned for a body above maxBodySize.
var ErrBodyTooLarge = errors.New("dialog-info body too large")

// ParseDialogInfo parses a NOTIFY body of the dialog event package. It
// returns one document for application/dialog-info+xml and one per
// dialog-info part of an RFC 4662 list (multipart/related with rlmi; the rlmi
// part itself is skipped). An empty body is one full, empty document: the
// extension is idle. contentType may be empty when the body is.
func ParseDialogInfo(contentType string, body []byte) ([]DialogInfo, error) {
	if len(body) > maxBodySize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, len(body), maxBodySize)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return []DialogInfo{{Full: true}}, nil
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		if strings.TrimSpace(contentType) != "" {
			return nil, fmt.Errorf("dialog-info: content type %q: %v", contentType, err)
		}
		mt = "application/dialog-info+xml" // some servers omit it; the body tells
	}
	switch {
	case mt == "application/dialog-info+xml":
		d, err := parseDialogDoc(body)
		if err != nil {
			return nil, err
		}
		return []DialogInfo{d}, nil
	case strings.HasPrefix(mt, "multipart/"):
		return parseList(body, params["boundary"], 0)
	}
	return nil, fmt.Errorf("dialog-info: unexpected content type %q (want application/dialog-info+xml)", mt)
}

// parseList takes the dialog-info parts of an RFC 4662 list. A list may
// nest (a list of lists), so it recurses, one level deep at most.
func parseList(body []byte, boundary string, depth int) ([]DialogInfo, error) {
	if boundary == "" {
		return nil, errors.New("dialog-info: multipart body without a boundary")
	}
	if depth > 1 {
		return nil, errors.New("dialog-info: resource lists nested too deep")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	var docs []DialogInfo
	for n := 0; ; n++ {
		if n >= maxListParts {
			return nil, fmt.Errorf("dialog-info: more than %d parts in a resource list", maxListParts)
		}
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("dialog-info: resource list: %v", err)
		}
		// The whole body is within maxBodySize, so a part is too.
		data, err := io.ReadAll(io.LimitReader(p, maxBodySize+1))
		if err != nil {
			return nil, fmt.Errorf("dialog-info: resource list part: %v", err)
		}
		mt, params, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			continue // a part we cannot classify says nothing about dialogs
		}
		switch {
		case mt == "application/dialog-info+xml":
			if len(bytes.TrimSpace(data)) == 0 {
				continue
			}
			d, err := parseDialogDoc(data)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d)
		case strings.HasPrefix(mt, "multipart/"):
			sub, err := parseList(data, params["boundary"], depth+1)
			if err != nil {
				return nil, err
			}
			docs = append(docs, sub...)
		}
		// application/rlmi+xml and anything else: not dialog state.
	}
	return docs, nil
}

// parseDialogDoc reads one dialog-info document token by token, so that
// depth and counts are checked before anything is kept. Elements are matched
// by local name: PBXs disagree about prefixes and default namespaces.
func parseDialogDoc(body []byte) (DialogInfo, error) {
	var doc DialogInfo
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	dec.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		// Everything that matters is ASCII; accept the usual labels.
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "iso-8859-1", "latin1":
			return r, nil
		}
		return nil, fmt.Errorf("charset %q not supported", charset)
	}
	var (
		stack   []string // local names of open elements
		cur     *Dialog
		text    strings.Builder
		inLocal bool
		sawRoot bool
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return DialogInfo{}, fmt.Errorf("dialog-info: malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return DialogInfo{}, fmt.Errorf("dialog-info: XML nested deeper than %d", maxXMLDepth)
			}
			name := t.Name.Local
			parent := ""
			if len(stack) > 0 {
				parent = stack[len(stack)-1]
			}
			stack = append(stack, name)
			switch {
			case len(stack) == 1:
				if name != "dialog-info" {
					return DialogInfo{}, fmt.Errorf("dialog-info: root element is <%s>, want <dialog-info>", clip(name))
				}
				sawRoot = true
				if err := doc.readRoot(t.Attr); err != nil {
					return DialogInfo{}, err
				}
			case name == "dialog" && len(stack) == 2:
				if len(doc.Dialogs) >= maxDialogs {
					return DialogInfo{}, fmt.Errorf("dialog-info: more than %d dialogs in one document", maxDialogs)
				}
				doc.Dialogs = append(doc.Dialogs, Dialog{})
				cur = &doc.Dialogs[len(doc.Dialogs)-1]
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "id":
						cur.ID = clip(a.Value)
					case "call-id":
						cur.CallID = clip(a.Value)
					case "direction":
						cur.Direction = strings.ToLower(clip(a.Value))
					}
				}
			case cur == nil:
			case name == "state" && parent == "dialog":
				text.Reset()
			case name == "local" && parent == "dialog":
				inLocal = true
			case name == "target":
				for _, a := range t.Attr {
					if a.Name.Local == "uri" && hasURIParam(a.Value, "isfocus") {
						cur.Conference = true
					}
				}
			case name == "param" && parent == "target":
				var pname, pvalue string
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "pname":
						pname = strings.ToLower(strings.TrimSpace(a.Value))
					case "pvalue":
						pvalue = strings.ToLower(strings.Trim(strings.TrimSpace(a.Value), `"`))
					}
				}
				switch pname {
				case "+sip.rendering":
					if inLocal && pvalue == "no" {
						cur.Held = true
					}
				case "isfocus", "+sip.isfocus":
					if pvalue != "false" {
						cur.Conference = true
					}
				}
			}
		case xml.CharData:
			if cur != nil && len(stack) > 0 && stack[len(stack)-1] == "state" && text.Len() < maxFieldBytes {
				text.Write(t)
			}
		case xml.EndElement:
			if len(stack) == 0 {
				return DialogInfo{}, errors.New("dialog-info: unbalanced XML")
			}
			name := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch {
			case cur != nil && name == "state" && len(stack) == 2:
				cur.State = strings.ToLower(strings.TrimSpace(text.String()))
			case cur != nil && name == "local" && len(stack) == 2:
				inLocal = false
			case name == "dialog" && len(stack) == 1:
				if cur != nil && cur.ID == "" {
					// RFC 4235 requires an id; without one the dialog
					// cannot be merged, so it is dropped, not guessed.
					doc.Dialogs = doc.Dialogs[:len(doc.Dialogs)-1]
				}
				cur = nil
			}
		}
	}
	if !sawRoot {
		return DialogInfo{}, errors.New("dialog-info: no <dialog-info> element")
	}
	return doc, nil
}

func (doc *DialogInfo) readRoot(attrs []xml.Attr) error {
	doc.Full = true // a missing state attribute is read as the safer full
	for _, a := range attrs {
		switch a.Name.Local {
		case "version":
			v, err := strconv.ParseUint(strings.TrimSpace(a.Value), 10, 64)
			if err != nil {
				return fmt.Errorf("dialog-info: version %q is not a number", clip(a.Value))
			}
			doc.Version, doc.HasVersion = v, true
		case "state":
			doc.Full = !strings.EqualFold(strings.TrimSpace(a.Value), "partial")
		case "entity":
			doc.Entity = clip(a.Value)
		}
	}
	return nil
}

// hasURIParam reports whether a SIP URI (as text) carries the parameter.
func hasURIParam(uri, param string) bool {
	for _, p := range strings.Split(uri, ";")[1:] {
		k, _, _ := strings.Cut(p, "=")
		if strings.EqualFold(strings.TrimSpace(k), param) {
			return true
		}
	}
	return false
}

func clip(s string) string {
	if len(s) > maxFieldBytes {
		return s[:maxFieldBytes]
	}
	return s
}

// dialogView is the merged dialog state of one subscription (one entity of
// it, for a list), as RFC 4235 §4.1 prescribes: versions rise by one per
// document; a full document replaces, a partial one merges by dialog id.
type dialogView struct {
	version    uint64
	hasVersion bool
	dialogs    map[string]Dialog
	order      []string // dialog ids in first-seen order, so calls list stably
}

// applyResult says what applying a document did.
type applyResult uint8

const (
	applyIgnored applyResult = iota // stale version: nothing changed
	applyTaken                      // merged
	applyResync                     // a gap or a partial without a base: ask for full state
)

// apply merges doc into the view.
func (v *dialogView) apply(doc DialogInfo) applyResult {
	if !doc.HasVersion {
		// An empty body: no dialogs; the version sequence is untouched.
		v.dialogs, v.order = nil, nil
		return applyTaken
	}
	if v.hasVersion && doc.Version <= v.version {
		return applyIgnored
	}
	if !doc.Full && (!v.hasVersion || doc.Version != v.version+1) {
		// A partial document only makes sense on top of the one before
		// it; after a gap only a full state (a new SUBSCRIBE) is right.
		return applyResync
	}
	if doc.Full {
		v.dialogs, v.order = nil, nil
	}
	if v.dialogs == nil {
		v.dialogs = map[string]Dialog{}
	}
	for _, d := range oncePerID(doc.Dialogs) {
		if !d.live() {
			if _, ok := v.dialogs[d.ID]; ok {
				delete(v.dialogs, d.ID)
				v.order = removeID(v.order, d.ID)
			}
			continue
		}
		if _, ok := v.dialogs[d.ID]; !ok {
			if len(v.dialogs) >= maxDialogs {
				continue // bounded: a flood of new dialogs is dropped
			}
			v.order = append(v.order, d.ID)
		}
		v.dialogs[d.ID] = d
	}
	v.version, v.hasVersion = doc.Version, true
	return applyTaken
}

// oncePerID keeps one entry per dialog id, the one furthest along
// (terminated, then confirmed, then early and before). Kamailio can list a
// dialog twice under one id: when two of its workers take a call's first
// PUBLISHes at once, pua keeps two publications for it, and one of them
// stays "early" for good beside the live one (confirmed, later terminated).
// The call is what the live entry says; the stale one must neither hide the
// answer nor keep an ended call ringing.
func oncePerID(ds []Dialog) []Dialog {
	if len(ds) < 2 {
		return ds
	}
	at := make(map[string]int, len(ds))
	out := make([]Dialog, 0, len(ds))
	for _, d := range ds {
		i, seen := at[d.ID]
		switch {
		case !seen:
			at[d.ID] = len(out)
			out = append(out, d)
		case stateRank(d.State) > stateRank(out[i].State):
			out[i] = d
		}
	}
	return out
}

// stateRank orders dialog states by how far along a dialog is.
func stateRank(state string) int {
	switch state {
	case stateTerminated:
		return 4
	case stateConfirmed:
		return 3
	case stateEarly:
		return 2
	case stateProceeding:
		return 1
	}
	return 0
}

// live returns the live dialogs in first-seen order.
func (v *dialogView) live() []Dialog {
	out := make([]Dialog, 0, len(v.order))
	for _, id := range v.order {
		out = append(out, v.dialogs[id])
	}
	return out
}

func removeID(ids []string, id string) []string {
	for i, x := range ids {
		if x == id {
			return append(ids[:i], ids[i+1:]...)
		}
	}
	return ids
}
