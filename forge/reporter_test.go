package forge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"ferry.dev/ferry/state"
)

// recorder is a Provider that remembers what it was asked, in order, and
// fails as told. It stands for the forge in tests of the Reporter's own
// logic (queue, dedup, retries); the providers are tested against forges.
type recorder struct {
	mu        sync.Mutex
	statuses  []string // "sha state description"
	comments  []string
	attempts  int
	times     []time.Time
	heads     map[string][]string
	headCalls int
	// fail, when set, decides the answer to attempt n (from 1) of s.
	fail  func(n int, s Status) error
	block chan struct{}
	// onBlock is called each time SetStatus starts waiting on block.
	onBlock func()
}

func (p *recorder) SetStatus(ctx context.Context, _ Repo, s Status) error {
	if p.block != nil {
		if p.onBlock != nil {
			p.onBlock()
		}
		select {
		case <-p.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts++
	p.times = append(p.times, time.Now())
	if p.fail != nil {
		if err := p.fail(p.attempts, s); err != nil {
			return err
		}
	}
	p.statuses = append(p.statuses, fmt.Sprintf("%s %s %s", state.Short(s.Commit), s.State, s.Description))
	return nil
}

func (p *recorder) PullRequestHeads(_ context.Context, _ Repo, commit string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.headCalls++
	return p.heads[commit], nil
}

func (p *recorder) OpenPullRequests(context.Context, Repo, string) ([]PullRequest, error) {
	return nil, nil
}

func (p *recorder) Comment(_ context.Context, _ Repo, pr int, marker, body string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.comments = append(p.comments, fmt.Sprintf("#%d %s %s", pr, marker, body))
	return nil
}

func (p *recorder) Statuses() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.statuses)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func fastOptions() ReporterOptions {
	o := DefaultReporterOptions()
	o.MinBackoff, o.MaxBackoff, o.Log = 5*time.Millisecond, 20*time.Millisecond, quietLog()
	return o
}

// startReporter runs r until the test ends.
func startReporter(t *testing.T, p Provider, opts ReporterOptions) *Reporter {
	r := NewReporter(p, opts)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func flush(t *testing.T, r *Reporter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

var acme = Repo{"acme", "app"}

func status(commit string, st State, desc string) Status {
	return Status{Environment: "staging", Commit: commit, State: st, Description: desc}
}

func TestReporterLifecycleOnCommitAndPullRequestHead(t *testing.T) {
	p := &recorder{heads: map[string][]string{commitA: {commitB}}}
	r := startReporter(t, p, fastOptions())
	for _, s := range []Status{
		status(commitA, Pending, DescApplying),
		status(commitA, Pending, DescVerifying(2*time.Minute)),
		status(commitA, Success, DescHealthy(commitA)),
		status(commitA, Success, DescPromoted("production")),
	} {
		r.Post(acme, s)
		flush(t, r)
	}
	want := []string{
		"0123456 pending applying", "89abcde pending applying",
		"0123456 pending verifying (soak 2m)", "89abcde pending verifying (soak 2m)",
		"0123456 success healthy at 0123456", "89abcde success healthy at 0123456",
		"0123456 success promoted to production", "89abcde success promoted to production",
	}
	if got := p.Statuses(); !slices.Equal(got, want) {
		t.Fatalf("statuses\n%v\nwant\n%v", got, want)
	}
	if p.headCalls != 1 {
		t.Fatalf("pull requests looked up %d times, want once per commit", p.headCalls)
	}
}

func TestReporterIdenticalStatusNotReposted(t *testing.T) {
	p := &recorder{}
	r := startReporter(t, p, fastOptions())
	s := status(commitA, Success, DescHealthy(commitA))
	for range 5 {
		r.Post(acme, s)
		flush(t, r)
	}
	// Another context, commit or description is news.
	plan := s
	plan.Context = PlanContext("staging")
	r.Post(acme, plan)
	r.Post(acme, status(commitB, Success, DescHealthy(commitB)))
	r.Post(acme, status(commitA, Success, DescPromoted("production")))
	r.Post(acme, s) // back to the first: posted again
	flush(t, r)
	want := []string{"0123456 success healthy at 0123456", "0123456 success healthy at 0123456",
		"89abcde success healthy at 89abcde", "0123456 success promoted to production", "0123456 success healthy at 0123456"}
	if got := p.Statuses(); !slices.Equal(got, want) {
		t.Fatalf("statuses\n%v\nwant\n%v", got, want)
	}
}

func TestReporterRetriesTransientErrors(t *testing.T) {
	p := &recorder{fail: func(n int, _ Status) error {
		if n <= 3 {
			return &ForgeError{Forge: "test", Op: "set status", Code: 502, Message: "bad gateway"}
		}
		return nil
	}}
	opts := fastOptions()
	opts.MinBackoff, opts.MaxBackoff = 20*time.Millisecond, 40*time.Millisecond
	r := startReporter(t, p, opts)
	r.Post(acme, status(commitA, Pending, DescApplying))
	flush(t, r)
	if got := p.Statuses(); len(got) != 1 || p.attempts != 4 {
		t.Fatalf("statuses %v after %d attempts, want one after 4", got, p.attempts)
	}
	// Jittered backoff: each wait at least half the doubled delay.
	for i, min := range []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond} {
		if gap := p.times[i+1].Sub(p.times[i]); gap < min {
			t.Errorf("wait before attempt %d: %v, want at least %v", i+2, gap, min)
		}
	}
}

func TestReporterRetriesTimeouts(t *testing.T) {
	p := &recorder{block: make(chan struct{})} // never answers
	opts := fastOptions()
	opts.Timeout, opts.MaxAttempts = 20*time.Millisecond, 3
	r := startReporter(t, p, opts)
	var mu sync.Mutex
	tries := 0
	p.onBlock = func() { mu.Lock(); tries++; mu.Unlock() }
	r.Post(acme, status(commitA, Pending, DescApplying))
	flush(t, r)
	mu.Lock()
	defer mu.Unlock()
	// The heads lookup does not block; the status is tried MaxAttempts times.
	if tries != 3 {
		t.Fatalf("%d tries of a request that times out, want 3", tries)
	}
}

func TestReporterGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		attempts int
	}{
		{"permanent error is not retried", &ForgeError{Forge: "test", Code: 401, Message: "Bad credentials"}, 1},
		{"transient error is retried a bounded number of times", &ForgeError{Forge: "test", Code: 500, Message: "boom"}, 4},
		{"unknown error is not retried", fmt.Errorf("status: invalid"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &recorder{fail: func(int, Status) error { return tc.err }}
			opts := fastOptions()
			opts.MaxAttempts = 4
			r := startReporter(t, p, opts)
			r.Post(acme, status(commitA, Pending, DescApplying))
			flush(t, r)
			if p.attempts != tc.attempts {
				t.Fatalf("%d attempts, want %d", p.attempts, tc.attempts)
			}
			// Given up, the same status may be posted again later.
			p.fail = nil
			r.Post(acme, status(commitA, Pending, DescApplying))
			flush(t, r)
			if got := p.Statuses(); len(got) != 1 {
				t.Fatalf("statuses %v, want the status posted once the forge answers", got)
			}
		})
	}
}

// TestReporterRetriesUntilDelivered: a forge down for longer than any
// bounded number of tries loses no status, and only the newest state of a
// commit's context is delivered after it comes back.
func TestReporterRetriesUntilDelivered(t *testing.T) {
	p := &recorder{fail: func(n int, _ Status) error {
		if n <= 20 {
			return &ForgeError{Forge: "test", Code: http.StatusServiceUnavailable, Message: "down"}
		}
		return nil
	}}
	opts := fastOptions()
	opts.MinBackoff, opts.MaxBackoff = time.Millisecond, 5*time.Millisecond
	r := startReporter(t, p, opts)
	r.Post(acme, status(commitA, Pending, DescVerifying(0)))
	r.Post(acme, status(commitA, Failure, "unhealthy"))
	flush(t, r)
	if p.attempts <= 20 {
		t.Fatalf("%d attempts, want more than the 20 failures", p.attempts)
	}
	if got := p.Statuses(); !slices.Equal(got, []string{"0123456 failure unhealthy"}) {
		t.Fatalf("statuses %v, want only the newest, failure, delivered", got)
	}
}

func TestReporterHonoursRateLimit(t *testing.T) {
	var limitedAt time.Time
	wait := 300 * time.Millisecond
	p := &recorder{fail: func(n int, _ Status) error {
		if n == 1 {
			limitedAt = time.Now()
			return &ForgeError{Forge: "test", Code: http.StatusTooManyRequests, RetryAt: limitedAt.Add(wait), Message: "slow down"}
		}
		return nil
	}}
	r := startReporter(t, p, fastOptions())
	r.Post(acme, status(commitA, Pending, DescApplying))
	r.Post(acme, status(commitB, Pending, DescApplying)) // another request: held too
	flush(t, r)
	if len(p.times) != 3 {
		t.Fatalf("%d attempts, want 3", len(p.times))
	}
	for i, at := range p.times[1:] {
		if at.Before(limitedAt.Add(wait)) {
			t.Errorf("request %d sent %v after the limit, before its end (%v)", i+2, at.Sub(limitedAt), wait)
		}
	}
	if got := p.Statuses(); !slices.Equal(got, []string{"0123456 pending applying", "89abcde pending applying"}) {
		t.Fatalf("statuses %v, want both in order", got)
	}
}

// TestReporterRetryNeverOverwritesNewerStatus: a status retried after a
// newer one for the same commit and context was posted is dropped.
func TestReporterRetryNeverOverwritesNewerStatus(t *testing.T) {
	p := &recorder{fail: func(_ int, s Status) error {
		if s.Description == DescApplying {
			return &ForgeError{Forge: "test", Code: 503, Message: "unavailable"}
		}
		return nil
	}}
	opts := fastOptions()
	opts.MinBackoff, opts.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	r := startReporter(t, p, opts)
	r.Post(acme, status(commitA, Pending, DescApplying))
	time.Sleep(10 * time.Millisecond) // the first try failed; its retry waits
	r.Post(acme, status(commitA, Success, DescHealthy(commitA)))
	flush(t, r)
	if got := p.Statuses(); !slices.Equal(got, []string{"0123456 success healthy at 0123456"}) {
		t.Fatalf("statuses %v, want only the newer one", got)
	}
}

func TestReporterPostNeverBlocks(t *testing.T) {
	p := &recorder{block: make(chan struct{})} // a forge that does not answer
	opts := fastOptions()
	opts.QueueSize = 8
	r := startReporter(t, p, opts)
	start := time.Now()
	for i := range 10000 {
		r.Post(acme, status(commitA, Pending, fmt.Sprintf("step %d", i)))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("10000 posts took %v with a stuck forge", took)
	}
	r.mu.Lock()
	queued := len(r.queue)
	r.mu.Unlock()
	if queued > opts.QueueSize {
		t.Fatalf("%d queued, want at most %d", queued, opts.QueueSize)
	}
	// Flush gives up with its context while the forge hangs.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := r.Flush(ctx); err == nil {
		t.Fatal("flush returned with requests stuck")
	}
	close(p.block)
	flush(t, r)
	// The newest statuses survived the full queue; the oldest were dropped.
	got := p.Statuses()
	if len(got) == 0 || got[len(got)-1] != "0123456 pending step 9999" {
		t.Fatalf("last status %v, want step 9999", got)
	}
}

func TestReporterComment(t *testing.T) {
	p := &recorder{}
	r := startReporter(t, p, fastOptions())
	r.Comment(acme, 3, "ferry/plan/staging", "one")
	flush(t, r)
	r.Comment(acme, 3, "ferry/plan/staging", "one")
	r.Comment(acme, 3, "ferry/plan/staging", "two")
	flush(t, r)
	want := []string{"#3 ferry/plan/staging one", "#3 ferry/plan/staging two"}
	if !slices.Equal(p.comments, want) {
		t.Fatalf("comments %v, want %v", p.comments, want)
	}
}

func TestReporterDropsInvalidStatus(t *testing.T) {
	p := &recorder{}
	r := startReporter(t, p, fastOptions())
	r.Post(acme, Status{Environment: "staging", Commit: "main", State: Success})
	r.Post(acme, Status{Environment: "staging", Commit: commitA, State: "done"})
	flush(t, r)
	if p.attempts != 0 {
		t.Fatalf("%d attempts for invalid statuses", p.attempts)
	}
}

func TestBackoff(t *testing.T) {
	for attempt, want := range []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		if attempt == 0 {
			continue
		}
		for range 50 {
			d := backoff(time.Second, 10*time.Second, attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}
