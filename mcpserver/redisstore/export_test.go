package redisstore

import "github.com/remotemcp/remotemcp/mcpserver"

// OnWait makes the Reads of l call f with the stream ID whenever they start
// waiting for the stream to change. Set it before the first Read.
func OnWait(l mcpserver.EventLog, f func(streamID string)) { l.(*Events).waiting = f }

// The scripts, so that tests can name them in round-trip counts.
var (
	ReadScript  = readScript
	WriteScript = writeScript
)
