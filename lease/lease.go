// Package lease shares named pieces of work (ferry's environments) among
// replicas: one Kubernetes Lease per name, won and renewed with client-go's
// leader election, so Kubernetes is the only coordination engine. Every
// replica competes for every name; a name's work runs only on the replica
// holding its Lease, and stops before the Lease is released.
//
// Spreading: each replica also renews a presence Lease of its own
// (ReplicaPrefix+identity), so each sees how many replicas run. A replica
// takes a free Lease (never created, or released) only while it holds fewer
// than its share, ceil(names/replicas), and hands back one name at a time
// while it holds more. A Lease whose holder stopped renewing is taken by
// whoever sees it expire first, whatever the share, so a dead replica's
// names move on at once; the share evens the load out afterwards. A free
// Lease nobody under its share takes within one LeaseDuration is taken by
// anyone, so the share never leaves a name without a holder.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"ferry.dev/ferry/internal/defaults"
)

// Options tunes a Pool.
type Options struct {
	// Namespace holds the Leases; Identity names this replica (the pod's
	// name) and must be unique among replicas.
	Namespace, Identity string
	// Prefix names each piece's Lease: Prefix+name.
	Prefix string
	// ReplicaPrefix names each replica's presence Lease: ReplicaPrefix+Identity.
	ReplicaPrefix string
	// LeaseDuration is how long a Lease holds after its last renewal;
	// RenewDeadline how long a holder keeps trying to renew before it
	// stops the work; RetryPeriod how often Leases are tried and renewed.
	// The work of a lost Lease has LeaseDuration-RenewDeadline to stop
	// before anyone else may start it. A Lease is taken over at most about
	// two jittered retry periods (2×2.2×RetryPeriod) after it expired.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Log receives takeovers and hand-overs; default slog.Default().
	Log *slog.Logger
}

// DefaultOptions returns the options ferry runs with: Leases ferry-env-<name>
// and ferry-replica-<identity>, 15 s leases renewed every second, so a
// dead replica's environments move within about 4.4 s of its leases
// expiring.
func DefaultOptions() Options {
	return Options{Prefix: "ferry-env-", ReplicaPrefix: "ferry-replica-",
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: time.Second}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Prefix == "" {
		o.Prefix = d.Prefix
	}
	if o.ReplicaPrefix == "" {
		o.ReplicaPrefix = d.ReplicaPrefix
	}
	defaults.Positive(&o.LeaseDuration, d.LeaseDuration)
	defaults.Positive(&o.RenewDeadline, d.RenewDeadline)
	defaults.Positive(&o.RetryPeriod, d.RetryPeriod)
	o.Log = defaults.Or(o.Log, slog.Default())
	return o
}

// ReplicaLabel marks presence Leases, so replicas list each other.
const ReplicaLabel = "ferry.dev/replica"

// Pool competes for one Lease per name on behalf of this replica.
type Pool struct {
	client kubernetes.Interface
	names  []string
	opts   Options

	mu       sync.Mutex
	held     map[string]*holding  // name → the work running under its Lease
	free     map[string]time.Time // name → since when its Lease is seen free
	replicas int                  // replicas seen, this one included
	lastShed time.Time
}

// holding is a name whose Lease this replica holds.
type holding struct {
	since    time.Time
	handBack context.CancelFunc // stops the work, so the Lease is released
	working  bool               // the work has not returned yet
}

// New returns a Pool for names; Run starts competing.
func New(client kubernetes.Interface, names []string, opts Options) *Pool {
	return &Pool{client: client, names: slices.Clone(names), opts: opts.withDefaults(),
		held: map[string]*holding{}, free: map[string]time.Time{}, replicas: 1}
}

// Held returns the names whose Leases this replica holds, sorted.
func (p *Pool) Held() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.held))
	for n := range p.held {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Run competes for every name until ctx ends, and calls work(ctx, name)
// while this replica holds name's Lease. work's context ends when the
// Lease is lost, handed back to even out the load, or ctx ends; work must
// return soon after. A lost or handed-back name is competed for again.
// When ctx ends, Run returns once every work returned and its Lease was
// released, and the presence Lease deleted, so the other replicas take
// over at once (TestReplicas in e2e pins it).
func (p *Pool) Run(ctx context.Context, work func(ctx context.Context, name string)) error {
	if p.opts.Identity == "" {
		return errors.New("leases: empty identity; set the pod name (POD_NAME)")
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.present(ctx) })
	// Give the other replicas starting now one look at each other before
	// anyone takes a free Lease, so the first to start takes its share,
	// not all.
	select {
	case <-ctx.Done():
	case <-time.After(2 * p.opts.RetryPeriod):
	}
	for _, name := range p.names {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := p.elect(ctx, name, work); err != nil {
					p.opts.Log.Error("lease", "environment", name, "error", err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(p.opts.RetryPeriod):
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// elect runs one election of name's Lease: it waits to win it (or for ctx
// to end), runs work while it holds it, and returns after work has
// returned and the Lease was released. It returns nil when ctx ended, the
// Lease was lost, or handed back.
func (p *Pool) elect(ctx context.Context, name string, work func(context.Context, string)) error {
	// The election has its own context, ended by us only: after work has
	// returned, or when ctx ends before this replica holds the Lease.
	// client-go releases the Lease as soon as the election's context ends,
	// without waiting for the work; ending it ourselves after the work
	// keeps two holders from overlapping.
	election, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var (
		mu       sync.Mutex
		leading  bool // work was started
		returned bool // the election is over; work must not start any more
		ran      = make(chan struct{})
	)
	defer context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading {
			stopElection()
		}
	})()
	lock := &gatedLock{
		LeaseLock: resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: p.opts.Namespace, Name: p.opts.Prefix + name},
			Client:     p.client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: p.opts.Identity},
		},
		pool: p, name: name,
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            lock.LeaseMeta.Name,
		LeaseDuration:   p.opts.LeaseDuration,
		RenewDeadline:   p.opts.RenewDeadline,
		RetryPeriod:     p.opts.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				// client-go starts this in a goroutine; it may come after
				// the election ended (ctx ended just as the Lease was won).
				mu.Lock()
				if returned {
					mu.Unlock()
					return
				}
				leading = true
				mu.Unlock()
				defer close(ran)
				defer stopElection()
				workCtx, cancel := context.WithCancel(leadCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				p.started(name, cancel)
				p.opts.Log.Info("lease taken", "environment", name, "identity", p.opts.Identity)
				work(workCtx, name)
				p.stopped(name)
				switch {
				case ctx.Err() != nil:
				case leadCtx.Err() != nil:
					p.opts.Log.Warn("lease lost; this environment stopped here and is competed for again", "environment", name)
				default:
					p.opts.Log.Info("lease handed back", "environment", name)
				}
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("lease %s/%s: %w", p.opts.Namespace, lock.LeaseMeta.Name, err)
	}
	elector.Run(election)
	mu.Lock()
	returned = true
	wasLeading := leading
	mu.Unlock()
	if wasLeading {
		<-ran // client-go returns without waiting for the work
	}
	p.release(name)
	return nil
}

// started records that name's work runs; handBack stops it.
func (p *Pool) started(name string, handBack context.CancelFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held[name] = &holding{since: time.Now(), handBack: handBack, working: true}
}

// stopped records that name's work returned; its Lease may be released.
func (p *Pool) stopped(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.held[name]; ok {
		h.working = false
	}
}

// release forgets name once its election is over.
func (p *Pool) release(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.held, name)
}

// share is how many names this replica should hold at most; p.mu held.
func (p *Pool) shareLocked() int {
	n := max(p.replicas, 1)
	return (len(p.names) + n - 1) / n
}

// mayTake reports whether this replica may take name's free Lease: while
// it holds less than its share, or when nobody took it for a LeaseDuration.
func (p *Pool) mayTake(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.held) < p.shareLocked() {
		return true
	}
	since, ok := p.free[name]
	return ok && time.Since(since) >= p.opts.LeaseDuration
}

// working reports whether name's work still runs.
func (p *Pool) working(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.held[name]
	return ok && h.working
}

// seenFree records whether name's Lease is free (absent or released).
func (p *Pool) seenFree(name string, free bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, was := p.free[name]
	switch {
	case free && !was:
		p.free[name] = time.Now()
	case !free:
		delete(p.free, name)
	}
}

// errGated refuses to take a free Lease beyond this replica's share.
var errGated = errors.New("this replica holds its share; leaving the lease to another")

// errWorking refuses to release a Lease while its work still runs (client-go
// releases on a failed renewal before the work has stopped).
var errWorking = errors.New("the work still runs; the lease is left to expire")

// gatedLock is client-go's LeaseLock that takes a free Lease only within
// this replica's share, and never releases one while its work runs.
// client-go calls Create on an absent Lease, and Update to renew, to take
// an expired or released one, and (with an empty holder) to release.
type gatedLock struct {
	resourcelock.LeaseLock
	pool *Pool
	name string

	mu   sync.Mutex
	last string // holder of the Lease as last read or written
}

// Get reads the Lease and notes its holder.
func (l *gatedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.LeaseLock.Get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		l.pool.seenFree(l.name, true)
		l.setLast("")
	case err == nil:
		l.pool.seenFree(l.name, rec.HolderIdentity == "")
		l.setLast(rec.HolderIdentity)
	}
	return rec, raw, err
}

// Create creates the absent Lease, within this replica's share.
func (l *gatedLock) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	if !l.pool.mayTake(l.name) {
		return errGated
	}
	if err := l.LeaseLock.Create(ctx, rec); err != nil {
		return err
	}
	l.setLast(rec.HolderIdentity)
	return nil
}

// Update renews, takes or releases the Lease.
func (l *gatedLock) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	l.mu.Lock()
	last := l.last
	l.mu.Unlock()
	switch {
	case rec.HolderIdentity == "" && l.pool.working(l.name):
		return errWorking
	case rec.HolderIdentity != "" && last == "" && !l.pool.mayTake(l.name):
		return errGated // a free Lease: within the share only
	}
	// Renewing our own, taking an expired one (its holder stopped
	// renewing: taken at once, whatever the share), or releasing.
	if err := l.LeaseLock.Update(ctx, rec); err != nil {
		return err
	}
	l.setLast(rec.HolderIdentity)
	return nil
}

func (l *gatedLock) setLast(holder string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = holder
}

// present renews this replica's presence Lease every RetryPeriod, counts
// the replicas whose presence is live, and hands back one name when this
// replica holds more than its share. When ctx ends it deletes the presence
// Lease, so the others' shares grow before this replica's names are
// released.
func (p *Pool) present(ctx context.Context) {
	leases := p.client.CoordinationV1().Leases(p.opts.Namespace)
	own := p.opts.ReplicaPrefix + p.opts.Identity
	seen := map[string]observed{}
	tick := time.NewTicker(p.opts.RetryPeriod)
	defer tick.Stop()
	for {
		if err := p.renewPresence(ctx, own); err != nil && ctx.Err() == nil {
			p.opts.Log.Warn("presence lease", "lease", own, "error", err)
		}
		if list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: ReplicaLabel}); err == nil {
			p.count(ctx, own, list.Items, seen)
		}
		p.shed()
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.RenewDeadline)
			defer cancel()
			if err := leases.Delete(dctx, own, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				p.opts.Log.Warn("delete presence lease", "lease", own, "error", err)
			}
			return
		case <-tick.C:
		}
	}
}

// observed is a presence Lease's renew time and when it was seen to change.
type observed struct {
	renew string
	at    time.Time
}

// count updates the number of live replicas from the presence Leases, and
// deletes those dead for long. A presence is live while it changed within
// LeaseDuration as seen on this replica's clock, as client-go judges a
// Lease: clocks of other machines are not compared.
func (p *Pool) count(ctx context.Context, own string, items []coordinationv1.Lease, seen map[string]observed) {
	now := time.Now()
	live := 1 // this replica
	names := map[string]bool{}
	for _, l := range items {
		names[l.Name] = true
		if l.Name == own || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			continue
		}
		renew := ""
		if l.Spec.RenewTime != nil {
			renew = l.Spec.RenewTime.Format(time.RFC3339Nano)
		}
		o, ok := seen[l.Name]
		if !ok || o.renew != renew {
			o = observed{renew: renew, at: now}
			if !ok && l.Spec.RenewTime != nil && now.Sub(l.Spec.RenewTime.Time) > p.opts.LeaseDuration {
				o.at = l.Spec.RenewTime.Time // first look at an old one: take its own word
			}
			seen[l.Name] = o
		}
		if now.Sub(o.at) < p.opts.LeaseDuration {
			live++
		} else if l.Spec.RenewTime != nil && now.Sub(l.Spec.RenewTime.Time) > 10*p.opts.LeaseDuration {
			// A replica killed long ago: its presence is garbage.
			_ = p.client.CoordinationV1().Leases(p.opts.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{})
		}
	}
	for n := range seen {
		if !names[n] {
			delete(seen, n)
		}
	}
	p.mu.Lock()
	if live != p.replicas {
		p.opts.Log.Info("replicas", "seen", live, "share", (len(p.names)+live-1)/live)
	}
	p.replicas = live
	p.mu.Unlock()
}

// renewPresence creates or renews the presence Lease own.
func (p *Pool) renewPresence(ctx context.Context, own string) error {
	leases := p.client.CoordinationV1().Leases(p.opts.Namespace)
	now := metav1.NewMicroTime(time.Now())
	secs := int32(p.opts.LeaseDuration / time.Second)
	l, err := leases.Get(ctx, own, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: own, Namespace: p.opts.Namespace, Labels: map[string]string{ReplicaLabel: "true"}},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &p.opts.Identity, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &p.opts.Identity, &secs, &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// shed hands back the most recently taken name when this replica holds
// more than its share, at most one every three retry periods, so the
// others take them one by one.
func (p *Pool) shed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.held) <= p.shareLocked() || time.Since(p.lastShed) < 3*p.opts.RetryPeriod {
		return
	}
	var newest string
	var since time.Time
	for n, h := range p.held {
		if h.working && h.since.After(since) {
			newest, since = n, h.since
		}
	}
	if newest == "" {
		return
	}
	p.lastShed = time.Now()
	p.opts.Log.Info("handing back an environment to even out the replicas", "environment", newest,
		"held", len(p.held), "share", p.shareLocked(), "replicas", p.replicas)
	p.held[newest].handBack()
}
