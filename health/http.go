package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"golang.org/x/sync/errgroup"

	"ferry.dev/ferry/internal/text"
)

// maxBody bounds the part of a response body an HTTP check reads and
// matches.
const maxBody = 1 << 20

// maxRedirects bounds the redirects an HTTP check follows on its host.
const maxRedirects = 10

// HTTPCheck is a GET request that must answer as expected. HTTP checks run
// once every object is Current, and again at every poll of the soak.
type HTTPCheck struct {
	// URL is requested with GET; it must be http:// or https://.
	URL string
	// Status is the status code expected, such as 200.
	Status int
	// Body, when not nil, must match the response body, of which the first
	// MiB is read.
	Body *regexp.Regexp
	// Timeout bounds one request, from connecting to reading the body.
	Timeout time.Duration
}

// HTTPStatus is the outcome of an HTTP check at one poll.
type HTTPStatus struct {
	// URL is the check's URL.
	URL string
	// OK reports whether the answer was as expected.
	OK bool
	// Message says what came back, e.g. "status 200", or what was wrong
	// with it: "status 503, want 200", "body does not match \"ok\"",
	// "no answer within 5s".
	Message string
}

// describe reads "GET http://web/healthz: status 503, want 200".
func (s HTTPStatus) describe() string {
	return "GET " + s.URL + ": " + s.Message
}

func (h HTTPCheck) validate() error {
	u, err := url.Parse(h.URL)
	switch {
	case err != nil:
		return fmt.Errorf("http check %q: %w", h.URL, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("http check %q: must be an http:// or https:// URL", h.URL)
	case h.Status < 100 || h.Status > 599:
		return fmt.Errorf("http check %s: status %d: must be 100 to 599", h.URL, h.Status)
	case h.Timeout <= 0:
		return fmt.Errorf("http check %s: timeout %s: must be positive", h.URL, h.Timeout)
	}
	return nil
}

// newHTTPClient returns the client of HTTP checks. It follows redirects on
// the requested host only: a check of https://web/healthz must not be
// answered by another server (TestHTTPCheck "redirect to another host").
// Every request opens a new connection, so that checks behind a Service
// reach other pods, rather than the one a kept-alive connection sticks to.
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DisableKeepAlives = true
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host != via[0].URL.Host || (via[0].URL.Scheme == "https" && req.URL.Scheme != "https") {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
}

// probe runs h once.
func (h HTTPCheck) probe(ctx context.Context, c *http.Client) HTTPStatus {
	fail := func(format string, args ...any) HTTPStatus {
		return HTTPStatus{URL: h.URL, Message: text.OneLine(fmt.Sprintf(format, args...), maxMessage)}
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return fail("%v", err)
	}
	req.Header.Set("User-Agent", "ferry-health-check")
	resp, err := c.Do(req)
	if err != nil {
		return fail("%s", requestError(ctx, err, h.Timeout))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode != h.Status {
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return fail("status %d, want %d (redirect to %s not followed: checks stay on %s://%s)",
				resp.StatusCode, h.Status, loc, req.URL.Scheme, req.URL.Host)
		}
		return fail("status %d, want %d", resp.StatusCode, h.Status)
	}
	if err != nil {
		return fail("status %d, body: %s", resp.StatusCode, requestError(ctx, err, h.Timeout))
	}
	if h.Body != nil && !h.Body.Match(body) {
		return fail("status %d, body does not match %q", resp.StatusCode, h.Body.String())
	}
	return HTTPStatus{URL: h.URL, OK: true, Message: fmt.Sprintf("status %d", resp.StatusCode)}
}

// requestError says why a request failed, without repeating its URL.
func requestError(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// probeAll runs every check once, pollConcurrency at a time, and returns
// their outcomes in order.
func probeAll(ctx context.Context, c *http.Client, checks []HTTPCheck) []HTTPStatus {
	out := make([]HTTPStatus, len(checks))
	g := new(errgroup.Group)
	g.SetLimit(pollConcurrency)
	for i, h := range checks {
		g.Go(func() error {
			out[i] = h.probe(ctx, c)
			return nil
		})
	}
	// Why no error to look at: probe reports every failure in its status.
	_ = g.Wait()
	return out
}
