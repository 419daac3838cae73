package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/object"
)

// Every server here is an httptest server on loopback.

// answer serves a fixed status and body.
func answer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestHTTPCheck(t *testing.T) {
	other := serve(t, answer(200, "other host"))
	// hang answers once the request is given up, so that Close does not wait.
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	closed := httptest.NewServer(answer(200, ""))
	closed.Close()
	mux := http.NewServeMux()
	mux.Handle("/ok", answer(200, `{"status":"ok"}`))
	mux.Handle("/unavailable", answer(503, "warming up"))
	mux.Handle("/created", answer(201, ""))
	mux.Handle("/hang", hang)
	mux.Handle("/moved", http.RedirectHandler("/ok", http.StatusFound))
	mux.Handle("/away", http.RedirectHandler(other.URL+"/", http.StatusFound))
	mux.Handle("/huge", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// The marker lies past the first MiB, which is all a check reads.
		fmt.Fprint(w, strings.Repeat("x", maxBody)+"MARKER")
	}))
	s := serve(t, mux)

	tests := []struct {
		name    string
		check   HTTPCheck
		wantOK  bool
		wantMsg string
	}{
		{name: "expected status", check: HTTPCheck{URL: s.URL + "/ok", Status: 200}, wantOK: true, wantMsg: "status 200"},
		{name: "other expected status", check: HTTPCheck{URL: s.URL + "/created", Status: 201}, wantOK: true, wantMsg: "status 201"},
		{name: "status mismatch", check: HTTPCheck{URL: s.URL + "/unavailable", Status: 200}, wantMsg: "status 503, want 200"},
		{
			name: "body matches", check: HTTPCheck{URL: s.URL + "/ok", Status: 200, Body: regexp.MustCompile(`"status":\s*"ok"`)},
			wantOK: true, wantMsg: "status 200",
		},
		{
			name: "body does not match", check: HTTPCheck{URL: s.URL + "/ok", Status: 200, Body: regexp.MustCompile(`^ready$`)},
			wantMsg: `status 200, body does not match "^ready$"`,
		},
		{
			name: "body read up to 1 MiB", check: HTTPCheck{URL: s.URL + "/huge", Status: 200, Body: regexp.MustCompile(`MARKER`)},
			wantMsg: `status 200, body does not match "MARKER"`,
		},
		{
			name: "timeout", check: HTTPCheck{URL: s.URL + "/hang", Status: 200, Timeout: 50 * time.Millisecond},
			wantMsg: "no answer within 50ms",
		},
		{name: "redirect on the same host", check: HTTPCheck{URL: s.URL + "/moved", Status: 200}, wantOK: true, wantMsg: "status 200"},
		{
			name: "redirect to another host", check: HTTPCheck{URL: s.URL + "/away", Status: 200},
			wantMsg: "status 302, want 200 (redirect to " + other.URL + "/ not followed: checks stay on " + s.URL + ")",
		},
		{name: "connection refused", check: HTTPCheck{URL: closed.URL, Status: 200}, wantMsg: "connection refused"},
	}
	c := newHTTPClient()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.check.Timeout == 0 {
				tt.check.Timeout = 5 * time.Second
			}
			got := tt.check.probe(t.Context(), c)
			if got.OK != tt.wantOK || !strings.Contains(got.Message, tt.wantMsg) || got.URL != tt.check.URL {
				t.Errorf("probe = %+v, want OK %v with %q", got, tt.wantOK, tt.wantMsg)
			}
		})
	}
}

func TestCheckHTTP(t *testing.T) {
	ok := serve(t, answer(200, "ok"))
	down := serve(t, answer(503, "down"))
	// recovering answers 503 to its first three requests, then 200.
	var calls atomic.Int32
	recovering := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(503)
		}
	}))
	check := func(s *httptest.Server) HTTPCheck { return HTTPCheck{URL: s.URL, Status: 200, Timeout: time.Second} }
	tests := []struct {
		name        string
		http        []HTTPCheck
		timeout     time.Duration
		wantOutcome Outcome
		wantReason  string
		wantHTTP    []bool
	}{
		{
			name: "passes", http: []HTTPCheck{check(ok), check(ok)}, timeout: time.Minute,
			wantOutcome: Healthy, wantReason: "2 objects Current, 2 HTTP checks passed", wantHTTP: []bool{true, true},
		},
		{
			name: "fails until the timeout", http: []HTTPCheck{check(ok), check(down)}, timeout: 100 * time.Millisecond,
			wantOutcome: TimedOut, wantReason: "1 of 2 HTTP checks failing: GET " + down.URL + ": status 503, want 200",
			wantHTTP: []bool{true, false},
		},
		{
			name: "recovers", http: []HTTPCheck{check(recovering)}, timeout: time.Minute,
			wantOutcome: Healthy, wantReason: "1 HTTP checks passed", wantHTTP: []bool{true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions(tt.timeout, 0)
			opts.HTTP = tt.http
			v, err := NewChecker(newFakeClient(nil, webObjects(deployment())...)).Check(t.Context(), object.ObjMetadataSet{webID, configID}, opts)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if v.Outcome != tt.wantOutcome || !strings.Contains(v.Reason, tt.wantReason) {
				t.Errorf("Check = %s %q, want %s with %q", v.Outcome, v.Reason, tt.wantOutcome, tt.wantReason)
			}
			var got []bool
			for _, h := range v.HTTP {
				got = append(got, h.OK)
			}
			if !equal(got, tt.wantHTTP) {
				t.Errorf("Check HTTP = %+v, want OK %v", v.HTTP, tt.wantHTTP)
			}
		})
	}
}

// TestCheckHTTPWaitsForObjects pins that HTTP checks run only once every
// object is Current: a rollout in progress is not probed.
func TestCheckHTTPWaitsForObjects(t *testing.T) {
	var calls atomic.Int32
	s := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	opts := fastOptions(50*time.Millisecond, 0)
	opts.HTTP = []HTTPCheck{{URL: s.URL, Status: 200, Timeout: time.Second}}
	v, err := NewChecker(newFakeClient(nil, webObjects(deployment(rolling))...)).Check(t.Context(), object.ObjMetadataSet{webID}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != TimedOut || strings.Contains(v.Reason, "HTTP") || len(v.HTTP) != 0 {
		t.Errorf("Check = %s %q %+v, want a timeout naming the Deployment only", v.Outcome, v.Reason, v.HTTP)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests while the Deployment rolled out, want none", n)
	}
}

func TestCheckHTTPSoakRegression(t *testing.T) {
	// The server answers 200 twice, to the poll that starts the soak and
	// to one during it, then 500.
	var calls atomic.Int32
	s := serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) > 2 {
			w.WriteHeader(500)
		}
	}))
	opts := fastOptions(time.Minute, 2*time.Second)
	opts.HTTP = []HTTPCheck{{URL: s.URL + "/healthz", Status: 200, Timeout: time.Second}}
	v, err := NewChecker(newFakeClient(nil, webObjects(deployment())...)).Check(t.Context(), object.ObjMetadataSet{webID, configID}, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := "during soak: GET " + s.URL + "/healthz: status 500, want 200"
	if v.Outcome != Failed || v.Reason != want {
		t.Errorf("Check = %s %q, want Failed %q", v.Outcome, v.Reason, want)
	}
	if v.Duration > 10*time.Second || calls.Load() != 3 {
		t.Errorf("Check took %s and %d requests, want the regression caught at the third poll", v.Duration, calls.Load())
	}
}

// TestCheckHTTPCancelled pins that a check cancelled while an HTTP check
// waits for its answer ends with ctx's error, not with a verdict.
func TestCheckHTTPCancelled(t *testing.T) {
	s := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	opts := fastOptions(time.Minute, time.Second)
	opts.HTTP = []HTTPCheck{{URL: s.URL, Status: 200, Timeout: 10 * time.Second}}
	v, err := NewChecker(newFakeClient(nil, webObjects(deployment())...)).Check(ctx, object.ObjMetadataSet{webID}, opts)
	if !errors.Is(err, context.Canceled) || v != nil {
		t.Fatalf("Check = %+v, %v; want no verdict and context.Canceled", v, err)
	}
}
