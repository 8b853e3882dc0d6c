package mcpserver

// StopLeaseRenewals makes h stop renewing the leases of the request streams
// it runs, as if the replica had died while its requests run on.
func StopLeaseRenewals(h *Handler) { h.stopRenewals.Store(true) }
