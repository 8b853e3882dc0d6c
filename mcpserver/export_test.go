package mcpserver

import "time"

// StopLeaseRenewals makes h stop renewing the leases of the request streams
// it runs, as if the replica had died while its requests run on.
func StopLeaseRenewals(h *Handler) { h.stopRenewals.Store(true) }

// AdvanceSessionCache moves the clock of h's session cache d forward.
func AdvanceSessionCache(h *Handler, d time.Duration) {
	c := h.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	c.now = func() time.Time { return now().Add(d) }
}
