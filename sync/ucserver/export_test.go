package ucserver

// Test hooks for the external tests; set before Run.

// SetAfterTake runs f on the reader goroutine between taking a pending
// invoke and applying its result.
func SetAfterTake(c *Conn, f func(op int)) { c.afterTake = f }

// SetOutboxMax sets the outbox bound.
func SetOutboxMax(c *Conn, n int) { c.outboxMax = n }

// Operation ids the tests hook on.
const (
	OpGetUserAbsentState  = opGetUserAbsentState
	OpCtiLineMonitorStart = opCtiLineMonitorStart
)

// MaxFrameBytes is the frame limit.
const MaxFrameBytes = maxFrameBytes

// FrameLimit is the frame limit for n configured users.
var FrameLimit = frameLimit
