package asterisk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Field is one "Key: Value" line of an AMI message.
type Field struct{ Key, Value string }

// Message is one AMI message (an action, a response or an event): its
// fields in wire order. Keys repeat in some messages (ListCommands, Setvar
// on some versions), so it is a list, not a map.
type Message []Field

// Get returns the value of the first field named key (case-insensitive, as
// Asterisk treats header names), or "".
func (m Message) Get(key string) string {
	for _, f := range m {
		if len(f.Key) == len(key) && strings.EqualFold(f.Key, key) {
			return f.Value
		}
	}
	return ""
}

// Has reports whether the message has a field named key.
func (m Message) Has(key string) bool {
	for _, f := range m {
		if strings.EqualFold(f.Key, key) {
			return true
		}
	}
	return false
}

// Limits bound what one message from the socket may cost: a violation ends
// the connection (ErrFrame), so a broken or hostile peer costs at most
// MaxLine bytes of buffer and MaxFields fields per message.
type Limits struct {
	MaxLine   int // bytes in one line, without its line break (default 8 KiB)
	MaxFields int // lines in one message (default 4096)
	MaxBytes  int // bytes of one message in all (default 1 MiB)
}

// Default limits. The largest legitimate message the bridge asks for is
// ListCommands' answer: one line per action, a few hundred lines.
const (
	defaultMaxLine   = 8 << 10
	defaultMaxFields = 4096
	defaultMaxBytes  = 1 << 20
)

func (l Limits) norm() Limits {
	if l.MaxLine <= 0 {
		l.MaxLine = defaultMaxLine
	}
	if l.MaxFields <= 0 {
		l.MaxFields = defaultMaxFields
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = defaultMaxBytes
	}
	return l
}

// ErrFrame marks a message that broke the limits or the syntax: the
// connection cannot be trusted to be in step any more and is dropped.
var ErrFrame = errors.New("AMI framing violated")

// Reader reads AMI messages with bounded memory.
type Reader struct {
	br  *bufio.Reader
	lim Limits
}

// NewReader reads from r. Its buffer is MaxLine plus the line break: a
// longer line is refused without being held in memory.
func NewReader(r io.Reader, lim Limits) *Reader {
	lim = lim.norm()
	return &Reader{br: bufio.NewReaderSize(r, lim.MaxLine+2), lim: lim}
}

// readLine returns one line without its CRLF (a bare LF is taken too). The
// slice is valid until the next read.
func (r *Reader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("%w: a line longer than %d bytes", ErrFrame, r.lim.MaxLine)
	}
	if err != nil {
		if len(line) > 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: connection closed in the middle of a line", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > r.lim.MaxLine {
		return nil, fmt.Errorf("%w: a line longer than %d bytes", ErrFrame, r.lim.MaxLine)
	}
	// A bare CR is no line break AMI writes; taken into a value it could
	// end a line wherever that value is shown or sent on.
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, fmt.Errorf("%w: a carriage return inside a line", ErrFrame)
	}
	return line, nil
}

// Banner reads the greeting line ("Asterisk Call Manager/5.0.1").
func (r *Reader) Banner() (string, error) {
	line, err := r.readLine()
	if err != nil {
		return "", err
	}
	return string(line), nil
}

// ReadMessage reads one message up to its empty line. Empty lines between
// messages are skipped. A line without a colon is a framing error (AMI has
// none in the messages the bridge asks for; Command output, which has, is
// never requested).
func (r *Reader) ReadMessage() (Message, error) {
	var (
		m     Message
		total int
	)
	for {
		line, err := r.readLine()
		if err != nil {
			if len(m) > 0 && errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: connection closed in the middle of a message", io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		if len(line) == 0 {
			if len(m) == 0 {
				continue
			}
			return m, nil
		}
		if len(m) >= r.lim.MaxFields {
			return nil, fmt.Errorf("%w: a message with more than %d lines", ErrFrame, r.lim.MaxFields)
		}
		total += len(line) + 2
		if total > r.lim.MaxBytes {
			return nil, fmt.Errorf("%w: a message larger than %d bytes", ErrFrame, r.lim.MaxBytes)
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return nil, fmt.Errorf("%w: line %q is not \"Key: Value\"", ErrFrame, clip(line, 60))
		}
		key := bytes.TrimSpace(line[:i])
		if len(key) == 0 {
			return nil, fmt.Errorf("%w: line %q has no key", ErrFrame, clip(line, 60))
		}
		val := line[i+1:]
		if len(val) > 0 && val[0] == ' ' {
			val = val[1:]
		}
		m = append(m, Field{Key: internKey(key), Value: string(val)})
	}
}

// internKey avoids an allocation for the keys every event carries.
func internKey(b []byte) string {
	switch string(b) {
	case "Event":
		return "Event"
	case "Response":
		return "Response"
	case "ActionID":
		return "ActionID"
	case "Privilege":
		return "Privilege"
	case "Device":
		return "Device"
	case "State":
		return "State"
	case "Message":
		return "Message"
	case "Channel":
		return "Channel"
	}
	return string(b)
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// checkValue refuses what would break the framing of an action: a line
// break in a value would let it inject fields or whole actions.
func checkValue(v string) error {
	if strings.ContainsAny(v, "\r\n\x00") {
		return fmt.Errorf("%w: value %q contains a line break or NUL", errBadValue, clip([]byte(v), 40))
	}
	return nil
}

var errBadValue = errors.New("not sendable over AMI")

// appendAction renders an action. Values were checked by the caller.
func appendAction(b []byte, action, id string, fields []Field) []byte {
	b = append(b, "Action: "...)
	b = append(b, action...)
	b = append(b, "\r\nActionID: "...)
	b = append(b, id...)
	b = append(b, "\r\n"...)
	for _, f := range fields {
		b = append(b, f.Key...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}
