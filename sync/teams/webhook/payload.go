package webhook

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// payload is a change notification POST body: a batch of notifications (Graph sends up to
// 100 at once) and, when any of them carries resource data, the validation tokens.
type payload struct {
	Value            []rawNotification `json:"value"`
	ValidationTokens []string          `json:"validationTokens"`
}

// rawNotification holds the fields of a notification or lifecycle notification that the
// receiver uses; everything else Graph sends (changeType, tenantId, organizationId…) is
// authenticated by nothing more than clientState and so not worth trusting further.
type rawNotification struct {
	SubscriptionID                 string            `json:"subscriptionId"`
	ClientState                    *string           `json:"clientState"`
	Resource                       string            `json:"resource"`
	SubscriptionExpirationDateTime string            `json:"subscriptionExpirationDateTime"`
	ResourceData                   *resourceData     `json:"resourceData"`
	EncryptedContent               *encryptedContent `json:"encryptedContent"`
	LifecycleEvent                 string            `json:"lifecycleEvent"`
}

type resourceData struct {
	ID      string `json:"id"`
	ODataID string `json:"@odata.id"`
}

type encryptedContent struct {
	Data                            string `json:"data"`
	DataSignature                   string `json:"dataSignature"`
	DataKey                         string `json:"dataKey"`
	EncryptionCertificateID         string `json:"encryptionCertificateId"`
	EncryptionCertificateThumbprint string `json:"encryptionCertificateThumbprint"`
}

var errNoValue = errors.New("payload has no value array")

// parsePayload decodes a POST body. It fails on anything that is not a JSON object with a
// value array; individual notifications are judged later, one by one.
func parsePayload(b []byte) (*payload, error) {
	var p payload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	// encoding/json leaves a missing or null value nil but makes [] an empty slice.
	if p.Value == nil {
		return nil, errNoValue
	}
	return &p, nil
}

// userID finds the user a basic notification is about: resourceData.id, else the resource
// path (communications/presences/{id}, communications/presences('{id}'),
// users/{id}/presence). Only GUIDs count: Graph user ids are object ids, and anything else
// would only make the adapter ask Graph about garbage.
func (n *rawNotification) userID() string {
	if n.ResourceData != nil {
		if id := normalizeID(n.ResourceData.ID); isGUID(id) {
			return id
		}
		if id := idFromPath(n.ResourceData.ODataID); id != "" {
			return id
		}
	}
	return idFromPath(n.Resource)
}

func idFromPath(p string) string {
	// Work on the lower-cased path only: lower-casing can change byte lengths (non-ASCII),
	// so offsets from one string must never index the other. IDs are lower-cased anyway.
	p = strings.ToLower(strings.Trim(strings.TrimSpace(p), "/"))
	if rest, ok := strings.CutPrefix(p, "communications/presences/"); ok {
		return guidOrEmpty(rest)
	}
	if rest, ok := strings.CutPrefix(p, "communications/presences('"); ok {
		if id, ok := strings.CutSuffix(rest, "')"); ok {
			return guidOrEmpty(id)
		}
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "users('"); ok {
		if id, ok := strings.CutSuffix(rest, "')/presence"); ok {
			return guidOrEmpty(id)
		}
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "users/"); ok {
		if id, ok := strings.CutSuffix(rest, "/presence"); ok {
			return guidOrEmpty(id)
		}
	}
	return ""
}

func guidOrEmpty(s string) string {
	if isGUID(s) {
		return s
	}
	return ""
}

// presencePlain is the decrypted resource data of a rich presence notification.
type presencePlain struct {
	ID             string          `json:"id"`
	Availability   string          `json:"availability"`
	Activity       string          `json:"activity"`
	SequenceNumber json.RawMessage `json:"sequenceNumber"`
}

// sequence returns sequenceNumber as text whether Graph sends it as a string (as on GET
// presence) or a number.
func (p *presencePlain) sequence() string {
	raw := strings.TrimSpace(string(p.SequenceNumber))
	if raw == "" || raw == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(p.SequenceNumber, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(p.SequenceNumber, &n) == nil {
		return n.String()
	}
	return ""
}

// parseGraphTime reads Graph's timestamps (seven fractional digits, Z); zero if unparsable.
func parseGraphTime(s string) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
		return t
	}
	return time.Time{}
}

func isGUID(s string) bool {
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
