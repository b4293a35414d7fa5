package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

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

// Bounds of a notification body beyond its size (Config.MaxBodyBytes).
const (
	// maxValueBytes bounds one notification, one validation token or one unknown member:
	// the decoder buffers a whole value before it decodes it, so without this bound a single
	// 1 MiB notification would cost a MiB of buffer plus its decoded copy. Graph's rich
	// presence notifications are about 2.5 KiB and its tokens under 2 KiB.
	maxValueBytes = 64 << 10
	// maxValidationTokens: Graph sends one token per app and tenant pair in the batch
	// (changeNotificationCollection); one bridge is one app in one tenant.
	maxValidationTokens = 32
	// maxMembers bounds the top-level members; Graph sends value and validationTokens.
	maxMembers = 16
)

var (
	errNoValue        = errors.New("payload has no value array")
	errValueTooLarge  = errors.New("a notification or token in the payload is too large")
	errTooMany        = errors.New("payload has too many notifications")
	errTooManyTokens  = errors.New("payload has too many validation tokens")
	errTooManyMembers = errors.New("payload has too many members")
	errDuplicate      = errors.New("payload repeats value or validationTokens")
	errTrailing       = errors.New("data after the payload")
)

// boundedReader lets the decoder read at most allow bytes past the point allow was last
// called, so that no single JSON value can make it buffer more than maxValueBytes (plus what
// it had read ahead).
type boundedReader struct {
	r        io.Reader
	n, limit int64
}

func (b *boundedReader) allow(n int64) { b.limit = b.n + n }

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n >= b.limit {
		return 0, errValueTooLarge
	}
	if rem := b.limit - b.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	return n, err
}

// decodePayload reads a POST body as it arrives: a JSON object whose value array is decoded
// one notification at a time and handed to visit before the next is read, so a body costs
// one notification's memory, not one struct per element. visit returning an error ends the
// reading at once (a forged notification: the rest of the body is not worth reading); that
// error is returned as it is. At most maxItems notifications are read. The validation tokens
// are returned.
//
// Anything that is not such an object fails: syntax, types, a missing or null value array,
// repeated members, data after the object. Member names match case-insensitively, as
// encoding/json matches struct fields.
func decodePayload(r io.Reader, maxItems int, visit func(*rawNotification) error) ([]string, error) {
	br := &boundedReader{r: r}
	dec := json.NewDecoder(br)
	br.allow(maxValueBytes)
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var tokens []string
	seenValue, seenTokens := false, false
	for members := 0; dec.More(); members++ {
		if members == maxMembers {
			return nil, errTooManyMembers
		}
		br.allow(maxValueBytes)
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		switch {
		case strings.EqualFold(key, "value"):
			if seenValue {
				return nil, errDuplicate
			}
			seenValue = true
			br.allow(maxValueBytes)
			if err := expectDelim(dec, '['); err != nil {
				if errors.Is(err, errNotDelim) {
					return nil, errNoValue
				}
				return nil, err
			}
			for n := 0; dec.More(); n++ {
				if n == maxItems {
					return nil, errTooMany
				}
				br.allow(maxValueBytes)
				var raw rawNotification
				if err := dec.Decode(&raw); err != nil {
					return nil, err
				}
				if err := visit(&raw); err != nil {
					return nil, err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return nil, err
			}
		case strings.EqualFold(key, "validationTokens"):
			if seenTokens {
				return nil, errDuplicate
			}
			seenTokens = true
			br.allow(maxValueBytes)
			t, err := dec.Token()
			if err != nil {
				return nil, err
			}
			if t == nil {
				continue // null: as encoding/json, no tokens
			}
			if t != json.Delim('[') {
				return nil, errors.New("validationTokens is not an array")
			}
			for dec.More() {
				if len(tokens) == maxValidationTokens {
					return nil, errTooManyTokens
				}
				br.allow(maxValueBytes)
				var tok string
				if err := dec.Decode(&tok); err != nil {
					return nil, err
				}
				tokens = append(tokens, tok)
			}
			if err := expectDelim(dec, ']'); err != nil {
				return nil, err
			}
		default:
			// Members Graph may add (@odata.type…) are skipped, one bounded value each.
			br.allow(maxValueBytes)
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
		}
	}
	br.allow(maxValueBytes)
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if !seenValue {
		return nil, errNoValue
	}
	// Only white space may follow, as for json.Unmarshal; the body size bounds the wait.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errTrailing
		}
		return nil, err
	}
	return tokens, nil
}

var errNotDelim = errors.New("unexpected JSON token")

func expectDelim(dec *json.Decoder, d json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != d {
		return fmt.Errorf("%w %v, want %v", errNotDelim, t, d)
	}
	return nil
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
