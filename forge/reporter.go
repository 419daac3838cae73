package forge

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"ferry.dev/ferry/internal/defaults"
	"ferry.dev/ferry/internal/lru"
)

// ReporterOptions tunes a Reporter.
type ReporterOptions struct {
	// QueueSize bounds the requests waiting. When it is full, the oldest
	// is dropped (and logged) so Post never blocks.
	QueueSize int
	// MaxAttempts bounds the tries of one request; 0, the default, tries a
	// request that fails transiently (no answer, 5xx, 429) until it is
	// delivered, or a newer request for the same commit and context
	// replaces it, or the full queue drops it. Forge errors that fail the
	// same way every time (a bad token, an unknown repository) are not
	// tried again.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the jittered, doubling delay between
	// tries of one request.
	MinBackoff, MaxBackoff time.Duration
	// MaxRateLimitWait caps how long a forge's rate limit holds the queue.
	MaxRateLimitWait time.Duration
	// Timeout bounds one request to the forge.
	Timeout time.Duration
	// Remember is how many posted statuses (for deduplication) and pull
	// request lookups (a cache per commit) are kept.
	Remember int
	// Log receives what went wrong; default slog.Default().
	Log *slog.Logger
}

// DefaultReporterOptions returns the options ferry runs with.
func DefaultReporterOptions() ReporterOptions {
	return ReporterOptions{
		QueueSize:        1024,
		MinBackoff:       time.Second,
		MaxBackoff:       2 * time.Minute,
		MaxRateLimitWait: time.Hour,
		Timeout:          httpTimeout,
		Remember:         4096,
	}
}

func (o ReporterOptions) withDefaults() ReporterOptions {
	d := DefaultReporterOptions()
	defaults.Positive(&o.QueueSize, d.QueueSize)
	// MaxAttempts 0 retries until delivered; a newer state of the same
	// commit and context replaces the one waiting.
	o.MaxAttempts = max(o.MaxAttempts, 0)
	defaults.Positive(&o.MinBackoff, d.MinBackoff)
	defaults.AtLeast(&o.MaxBackoff, d.MaxBackoff, o.MinBackoff)
	defaults.Positive(&o.MaxRateLimitWait, d.MaxRateLimitWait)
	defaults.Positive(&o.Timeout, d.Timeout)
	defaults.Positive(&o.Remember, d.Remember)
	o.Log = defaults.Or(o.Log, slog.Default())
	return o
}

// Reporter posts statuses and comments through a Provider without ever
// blocking its caller: a bounded queue drained by one worker (Run), in the
// order they were posted. A status identical to the last one posted for
// the same repository, context and commit is not posted again. Failed
// requests are retried with jittered backoff until delivered (a forge
// outage loses no status), except where a newer request for the same key
// replaced them, so only the newest state per (commit, context) waits; a
// rate-limited forge holds the whole queue until the time it gave.
type Reporter struct {
	p    Provider
	opts ReporterOptions

	mu          sync.Mutex
	queue       []*job
	busy        bool
	seq         uint64
	latest      map[string]uint64 // key → seq of the newest job queued for it
	pausedUntil time.Time
	// dropped counts requests dropped from a full queue, logged at most
	// once a minute.
	dropped       int
	droppedLogged time.Time
	changed       chan struct{} // closed and replaced on every change, for Flush
	wake          chan struct{}

	posted *lru.Map[string, string]   // key → fingerprint of the last request that succeeded
	heads  *lru.Map[string, []string] // repo@commit → pull request heads
	// sequences keeps the statuses of each commit in order, so pull
	// request heads found late get the whole sequence (fanOut).
	sequences *lru.Map[string, []Status]
}

// maxSequence bounds the statuses kept per commit for late pull request heads.
const maxSequence = 16

type jobKind int

const (
	jobStatus  jobKind = iota // post status on status.Commit
	jobHeads                  // find the pull request heads of status.Commit, then post status on each
	jobComment                // create or update a comment
)

type job struct {
	kind    jobKind
	repo    Repo
	status  Status
	pr      int
	marker  string
	body    string
	seq     uint64
	attempt int
	// notBefore is when a retried job may run again.
	notBefore time.Time
}

// key names what a job sets on the forge: a later job with the same key
// replaces what it sets.
func (j *job) key() string {
	repo := strings.ToLower(j.repo.String())
	switch j.kind {
	case jobComment:
		return "comment\x00" + repo + "\x00" + strconv.Itoa(j.pr) + "\x00" + j.marker
	case jobHeads:
		return "heads\x00" + repo + "\x00" + strings.ToLower(j.status.Commit) + "\x00" + j.status.StatusContext()
	default:
		return "status\x00" + repo + "\x00" + strings.ToLower(j.status.Commit) + "\x00" + j.status.StatusContext()
	}
}

// fingerprint is what makes two requests with the same key identical.
func (j *job) fingerprint() string {
	if j.kind == jobComment {
		return j.body
	}
	return string(j.status.State) + "\x00" + j.status.Description + "\x00" + j.status.TargetURL
}

// NewReporter returns a Reporter posting through p. Nothing is posted
// until Run runs.
func NewReporter(p Provider, opts ReporterOptions) *Reporter {
	opts = opts.withDefaults()
	return &Reporter{
		p: p, opts: opts,
		latest:    map[string]uint64{},
		changed:   make(chan struct{}),
		wake:      make(chan struct{}, 1),
		posted:    lru.New[string, string](opts.Remember),
		heads:     lru.New[string, []string](opts.Remember),
		sequences: lru.New[string, []Status](opts.Remember),
	}
}

// Post queues s for s.Commit of repo, and for the head commits of the pull
// requests that brought s.Commit in (looked up once per commit). It never
// blocks. An invalid status is logged and dropped.
func (r *Reporter) Post(repo Repo, s Status) {
	if err := s.Validate(); err != nil {
		r.opts.Log.Error("report: status not posted", "environment", s.Environment, "commit", s.Commit, "error", err)
		return
	}
	j := &job{kind: jobStatus, repo: repo, status: s}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.duplicateLocked(j) {
		return
	}
	r.pushLocked(j)
	key := headsKey(repo, s.Commit)
	prev, _ := r.sequences.Get(key)
	if len(prev) >= maxSequence {
		prev = prev[len(prev)-maxSequence+1:]
	}
	r.sequences.Put(key, append(append(make([]Status, 0, len(prev)+1), prev...), s))
	if heads, ok := r.heads.Get(key); ok {
		for _, h := range heads {
			hs := s
			hs.Commit = h
			r.pushLocked(&job{kind: jobStatus, repo: repo, status: hs})
		}
	} else {
		r.pushLocked(&job{kind: jobHeads, repo: repo, status: s})
	}
	r.wakeLocked()
}

// Comment queues the comment carrying marker on pull request pr of repo,
// created or updated in place. It never blocks; the same body is not
// posted twice.
func (r *Reporter) Comment(repo Repo, pr int, marker, body string) {
	if _, err := markerLine(marker); err != nil {
		r.opts.Log.Error("report: comment not posted", "repository", repo.String(), "pullRequest", pr, "error", err)
		return
	}
	j := &job{kind: jobComment, repo: repo, pr: pr, marker: marker, body: body}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.duplicateLocked(j) {
		return
	}
	r.pushLocked(j)
	r.wakeLocked()
}

// duplicateLocked reports whether j asks for what the forge already shows
// and nothing else is queued for its key.
func (r *Reporter) duplicateLocked(j *job) bool {
	if _, queued := r.latest[j.key()]; queued {
		return false
	}
	fp, ok := r.posted.Get(j.key())
	return ok && fp == j.fingerprint()
}

func (r *Reporter) pushLocked(j *job) {
	r.seq++
	j.seq = r.seq
	r.latest[j.key()] = j.seq
	if len(r.queue) >= r.opts.QueueSize {
		old := r.queue[0]
		r.queue = r.queue[1:]
		r.doneLocked(old)
		r.dropped++
		// At most one line a minute: a forge down for an hour must not
		// flood the log (TestReporterPostNeverBlocks).
		if now := time.Now(); now.Sub(r.droppedLogged) > time.Minute {
			r.droppedLogged = now
			r.opts.Log.Warn("report: queue full, dropping the oldest requests", "dropped", r.dropped,
				"environment", old.status.Environment, "commit", old.status.Commit, "context", old.status.StatusContext(), "repository", old.repo.String())
		}
	}
	r.queue = append(r.queue, j)
	r.notifyLocked()
}

// doneLocked forgets j's key unless a newer job holds it.
func (r *Reporter) doneLocked(j *job) {
	if r.latest[j.key()] == j.seq {
		delete(r.latest, j.key())
	}
}

func (r *Reporter) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Reporter) wakeLocked() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run posts queued requests until ctx is done. Requests still queued then
// are dropped: Flush first, with a deadline, to post them on shutdown.
func (r *Reporter) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		j, wait := r.next(time.Now())
		if j != nil {
			r.do(ctx, j)
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		var tick <-chan time.Time
		if wait > 0 {
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-tick:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// next takes the first job that may run now and marks the worker busy. With
// none, it returns how long until one may run (0: wait for a Post).
func (r *Reporter) next(now time.Time) (*job, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		return nil, 0
	}
	if now.Before(r.pausedUntil) {
		return nil, r.pausedUntil.Sub(now)
	}
	var soonest time.Time
	for i, j := range r.queue {
		if !now.Before(j.notBefore) {
			r.queue = append(r.queue[:i:i], r.queue[i+1:]...)
			r.busy = true
			return j, 0
		}
		if soonest.IsZero() || j.notBefore.Before(soonest) {
			soonest = j.notBefore
		}
	}
	return nil, soonest.Sub(now)
}

// do runs j once and then either forgets it or queues its retry.
func (r *Reporter) do(ctx context.Context, j *job) {
	err := r.run(ctx, j)
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.notifyLocked()
	r.busy = false
	if err == nil || ctx.Err() != nil {
		r.doneLocked(j)
		return
	}
	log := r.opts.Log.With("environment", j.status.Environment, "commit", j.status.Commit,
		"context", j.status.StatusContext(), "repository", j.repo.String(), "attempt", j.attempt+1)
	if j.kind == jobComment {
		log = r.opts.Log.With("repository", j.repo.String(), "pullRequest", j.pr, "marker", j.marker, "attempt", j.attempt+1)
	}
	// A request that outlived Timeout is worth another try; the forge
	// may be slow, not wrong (TestReporterRetriesTimeouts).
	transient := IsTransient(err) || errors.Is(err, context.DeadlineExceeded)
	if !transient || (r.opts.MaxAttempts > 0 && j.attempt+1 >= r.opts.MaxAttempts) {
		log.Error("report: giving up", "error", err)
		r.doneLocked(j)
		return
	}
	j.attempt++
	now := time.Now()
	delay := backoff(r.opts.MinBackoff, r.opts.MaxBackoff, j.attempt)
	var fe *ForgeError
	if errors.As(err, &fe) && fe.RetryAt.After(now) {
		until := fe.RetryAt
		if limit := now.Add(r.opts.MaxRateLimitWait); until.After(limit) {
			until = limit
		}
		// The limit is the token's, not the request's: hold everything.
		r.pausedUntil = until
		delay = max(delay, until.Sub(now))
		log.Warn("report: rate limited", "until", until, "error", err)
	} else {
		log.Warn("report: will retry", "in", delay, "error", err)
	}
	j.notBefore = now.Add(delay)
	// First in the queue: it was the oldest.
	r.queue = append([]*job{j}, r.queue...)
}

// run performs one job. A retried job whose key a newer job holds is
// dropped: posting it after the newer one would show stale news.
func (r *Reporter) run(ctx context.Context, j *job) error {
	r.mu.Lock()
	superseded := j.attempt > 0 && r.latest[j.key()] != j.seq
	r.mu.Unlock()
	if superseded {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	switch j.kind {
	case jobHeads:
		return r.fanOut(ctx, j)
	case jobComment:
		if fp, ok := r.posted.Get(j.key()); ok && fp == j.fingerprint() {
			return nil
		}
		if err := r.p.Comment(ctx, j.repo, j.pr, j.marker, j.body); err != nil {
			return err
		}
	default:
		if fp, ok := r.posted.Get(j.key()); ok && fp == j.fingerprint() {
			return nil
		}
		if err := r.p.SetStatus(ctx, j.repo, j.status); err != nil {
			r.posted.Remove(j.key()) // the forge may show anything now
			return err
		}
	}
	r.posted.Put(j.key(), j.fingerprint())
	return nil
}

// fanOut finds the pull request heads of j's commit, caches them, and
// queues j's status for each.
func (r *Reporter) fanOut(ctx context.Context, j *job) error {
	key := headsKey(j.repo, j.status.Commit)
	if _, ok := r.heads.Get(key); ok {
		return nil // an earlier lookup found the heads and posted the sequence
	}
	heads, err := r.p.PullRequestHeads(ctx, j.repo, j.status.Commit)
	if err != nil || len(heads) == 0 {
		// An empty answer is not kept: a forge may link a merge to its pull
		// request a moment after the merge, and the next status asks again
		// (TestCommitStatusesAndBadges).
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heads.Put(key, heads)
	sequence, _ := r.sequences.Get(key)
	for _, s := range sequence {
		for _, h := range heads {
			hs := s
			hs.Commit = h
			r.pushLocked(&job{kind: jobStatus, repo: j.repo, status: hs})
		}
	}
	return nil
}

func headsKey(repo Repo, commit string) string {
	return strings.ToLower(repo.String()) + "@" + strings.ToLower(commit)
}

// Flush waits until every queued request was posted or given up, or ctx
// is done. Run must be running.
func (r *Reporter) Flush(ctx context.Context) error {
	for {
		r.mu.Lock()
		idle := len(r.queue) == 0 && !r.busy
		ch := r.changed
		r.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// backoff is the delay before try attempt+1: min doubled per attempt, at
// most max, with "equal jitter" (half fixed, half random) so many ferries
// retrying one forge spread out.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
