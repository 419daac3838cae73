package source

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"ferry.dev/ferry/internal/defaults"
	"ferry.dev/ferry/internal/faults"
)

// WatchOptions tune a Watcher.
type WatchOptions struct {
	// Interval is the time between polls while they succeed.
	Interval time.Duration
	// MaxBackoff caps the wait between polls while they fail. Failed polls
	// are retried after Interval/4, doubling per failure in a row, with
	// ±20% jitter.
	MaxBackoff time.Duration
	// Timeout bounds one poll (ls-remote and fetch).
	Timeout time.Duration
	// TerminalBackoff is the wait after a poll that failed for a reason
	// only a person can fix (a wrong token, a missing branch, an untrusted
	// host key). The watcher polls sooner when a credential file changes
	// or on Trigger, so a wrong token causes no storm of requests.
	TerminalBackoff time.Duration
	// CredentialCheck is how often the credential files are read while
	// the watcher waits out a terminal error.
	CredentialCheck time.Duration
}

// DefaultWatchOptions polls every minute, backs off up to five minutes,
// gives a poll two minutes, and after a terminal error polls again in half
// an hour, or once a credential file changes (checked every two seconds).
func DefaultWatchOptions() WatchOptions {
	return WatchOptions{Interval: time.Minute, MaxBackoff: 5 * time.Minute, Timeout: 2 * time.Minute,
		TerminalBackoff: 30 * time.Minute, CredentialCheck: 2 * time.Second}
}

// Watcher polls one branch of a Repository and delivers each new tip,
// already fetched. A failed poll keeps the last revision and is retried with
// jittered exponential backoff; the first success returns to the interval.
type Watcher struct {
	repo    *Repository
	branch  string
	opts    WatchOptions
	revs    chan *Revision
	trigger chan struct{}

	// after and jitter are time.After and a uniform [0,1) source; tests
	// replace them to step through the backoff (TestWatcherBackoff).
	after  func(time.Duration) <-chan time.Time
	jitter func() float64

	mu   sync.Mutex
	last *Revision
	err  error
}

// NewWatcher returns a Watcher of branch in repo; zero fields of opts take
// their DefaultWatchOptions values. Start it with Run.
func NewWatcher(repo *Repository, branch string, opts WatchOptions) *Watcher {
	def := DefaultWatchOptions()
	defaults.Positive(&opts.Interval, def.Interval)
	defaults.Positive(&opts.MaxBackoff, def.MaxBackoff)
	defaults.Positive(&opts.Timeout, def.Timeout)
	defaults.Positive(&opts.TerminalBackoff, def.TerminalBackoff)
	defaults.Positive(&opts.CredentialCheck, def.CredentialCheck)
	return &Watcher{
		repo:    repo,
		branch:  branch,
		opts:    opts,
		revs:    make(chan *Revision, 1),
		trigger: make(chan struct{}, 1),
		after:   time.After,
		jitter:  rand.Float64,
	}
}

// Run polls until ctx is done, then returns nil. The first poll runs at
// once. Call it once per Watcher.
func (w *Watcher) Run(ctx context.Context) error {
	failures := 0
	for {
		err := w.poll(ctx)
		if err != nil && ctx.Err() == nil && faults.Classify(err) == faults.Terminal {
			// Why not back off as from an outage: retrying a wrong token
			// every few seconds only floods the forge (TestWatcherTerminal).
			failures = 0
			if !w.waitTerminal(ctx) {
				return nil
			}
			continue
		}
		if err != nil {
			failures++
		} else {
			failures = 0
		}
		wait := w.opts.Interval
		if failures > 0 {
			wait = retryDelay(failures, w.opts, w.jitter())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.trigger:
		case <-w.after(wait):
		}
	}
}

// waitTerminal waits after a terminal error until a credential file
// changes, Trigger is called or TerminalBackoff passes; it returns false
// when ctx ends first.
func (w *Watcher) waitTerminal(ctx context.Context) bool {
	stamp := w.repo.creds.stamp()
	long := w.after(w.opts.TerminalBackoff)
	tick := time.NewTicker(w.opts.CredentialCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-w.trigger:
			return true
		case <-long:
			return true
		case <-tick.C:
			if w.repo.creds.stamp() != stamp {
				return true
			}
		}
	}
}

// Revisions delivers each new tip. It holds at most one: a consumer slower
// than the branch sees the newest tip, never a queue of stale ones.
func (w *Watcher) Revisions() <-chan *Revision { return w.revs }

// Trigger asks for a poll now, e.g. on a push webhook. It never blocks;
// triggers during a poll coalesce into one more poll.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Err is the error of the last poll, nil after a success.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Last is the newest revision fetched, kept through failed polls; nil
// before the first success.
func (w *Watcher) Last() *Revision {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *Watcher) poll(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
	defer cancel()
	rev, err := w.repo.Fetch(pctx, w.branch)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: not a poll failure to report
	}
	w.mu.Lock()
	w.err = err
	fresh := err == nil && (w.last == nil || w.last.Hash() != rev.Hash())
	if fresh {
		w.last = rev
	}
	w.mu.Unlock()
	if fresh {
		w.deliver(rev)
	}
	return err
}

// deliver puts rev in the channel, replacing a revision nobody took yet.
// Run is the only sender, so the loop ends.
func (w *Watcher) deliver(rev *Revision) {
	for {
		select {
		case w.revs <- rev:
			return
		default:
		}
		select {
		case <-w.revs:
		default:
		}
	}
}

// retryDelay is the wait after the n-th failed poll in a row (n ≥ 1):
// Interval/4 doubled per failure, capped at MaxBackoff, times a jitter
// factor in [0.8, 1.2) from u in [0, 1), never above MaxBackoff.
func retryDelay(n int, o WatchOptions, u float64) time.Duration {
	d := max(o.Interval/4, time.Millisecond)
	for i := 1; i < n && d < o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, o.MaxBackoff)
	return min(time.Duration(float64(d)*(0.8+0.4*u)), o.MaxBackoff)
}
