package as_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/remotemcp/remotemcp/authz/as"
)

// Behind a load balancer, count requests against the client address the
// balancer saw, and believe X-Forwarded-For only from the balancer itself.
// The RateLimits go in Options.RateLimits, with a Limiter shared by
// every replica (redisstore.NewRateLimiter).
func ExampleForwardedFor() {
	rl := as.RateLimits{
		// Limiter: redisstore.NewRateLimiter(rdb, nil),
		ClientAddress: as.ForwardedFor(netip.MustParsePrefix("10.0.0.0/8")),
		Token:         as.EndpointLimits{PerClient: as.Limit{Requests: 30}}, // the rest: defaults
	}

	viaBalancer := httptest.NewRequest(http.MethodPost, "/token", nil)
	viaBalancer.RemoteAddr = "10.0.0.5:41000"
	viaBalancer.Header.Set("X-Forwarded-For", "6.6.6.6, 198.51.100.7") // the client wrote 6.6.6.6
	fmt.Println(rl.ClientAddress(viaBalancer))

	direct := httptest.NewRequest(http.MethodPost, "/token", nil)
	direct.RemoteAddr = "203.0.113.9:52000"
	direct.Header.Set("X-Forwarded-For", "198.51.100.7") // not from our balancer: ignored
	fmt.Println(rl.ClientAddress(direct))
	// Output:
	// 198.51.100.7
	// 203.0.113.9
}
