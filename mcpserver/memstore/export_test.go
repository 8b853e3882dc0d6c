package memstore

import "github.com/remotemcp/remotemcp/mcpserver"

// SizeOf returns what s holds for a session: its record, streams and
// leases, and the bytes of its record and of the messages logged in its
// streams.
func SizeOf(s mcpserver.Stores, sessionID string) (entries int, bytes int64) {
	sessions, events := s.Sessions.(*Sessions), s.Events.(*Events)
	sessions.mu.Lock()
	if e, ok := sessions.m[sessionID]; ok {
		entries++
		bytes += int64(len(e.data))
	}
	sessions.mu.Unlock()
	events.mu.Lock()
	defer events.mu.Unlock()
	sl := events.m[sessionID]
	if sl == nil {
		return entries, bytes
	}
	entries += len(sl.streams) + len(sl.leases)
	for _, st := range sl.streams {
		for _, e := range st.events {
			bytes += int64(len(e.Data))
		}
	}
	return entries, bytes
}
