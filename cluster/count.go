package cluster

import (
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Requests counts the requests every REST config from RESTConfig makes to
// an API server, a long-running watch counting once when it starts. The
// server exports it as ferry_api_requests_total, and the benchmarks and
// tests read it to show what a reconcile costs.
var Requests = &Counter{}

// Counter counts HTTP requests made through the round-trippers it wraps.
type Counter struct{ n atomic.Int64 }

// Load returns the requests counted so far.
func (c *Counter) Load() int64 { return c.n.Load() }

// Wrap makes cfg's requests count on c; it returns cfg.
func (c *Counter) Wrap(cfg *rest.Config) *rest.Config {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting{c: c, next: rt} })
	return cfg
}

type counting struct {
	c    *Counter
	next http.RoundTripper
}

func (t counting) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.n.Add(1)
	return t.next.RoundTrip(r)
}
