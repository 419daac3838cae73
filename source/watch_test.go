package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRetryDelay(t *testing.T) {
	o := WatchOptions{Interval: 4 * time.Second, MaxBackoff: 10 * time.Second}
	cases := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{4, 0.5, 8 * time.Second},
		{5, 0.5, 10 * time.Second},
		{50, 0.5, 10 * time.Second},
		{1, 0, 800 * time.Millisecond},
		{1, 0.75, 1100 * time.Millisecond},
		{3, 0, 3200 * time.Millisecond},
		{5, 0, 8 * time.Second},
		{5, 0.75, 10 * time.Second}, // never above MaxBackoff
	}
	for _, tc := range cases {
		got := retryDelay(tc.n, o, tc.jitter)
		if got.Round(time.Microsecond) != tc.want {
			t.Errorf("retryDelay(%d, jitter %v) = %s, want %s", tc.n, tc.jitter, got, tc.want)
		}
	}
}

// run starts w and stops it at the end of the test.
func run(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func next(t *testing.T, w *Watcher, within time.Duration) *Revision {
	t.Helper()
	select {
	case rev := <-w.Revisions():
		return rev
	case <-time.After(within):
		t.Fatalf("no revision within %s (last error: %v)", within, w.Err())
		return nil
	}
}

func TestWatcherDeliversNewTips(t *testing.T) {
	rem := newRemote(t)
	first := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	w := NewWatcher(open(t, rem.url, Credentials{}, t.TempDir()), "main", WatchOptions{Interval: 20 * time.Millisecond})
	run(t, w)

	if rev := next(t, w, 10*time.Second); rev.Hash().String() != first || rev.Branch != "main" {
		t.Fatalf("first revision %s, want %s", rev, first[:7])
	}
	// Polls of an unchanged tip deliver nothing.
	select {
	case rev := <-w.Revisions():
		t.Fatalf("unchanged tip delivered again: %s", rev)
	case <-time.After(200 * time.Millisecond):
	}
	second := rem.commit(map[string]string{"a.yaml": "2\n"}, "second")
	if rev := next(t, w, 10*time.Second); rev.Hash().String() != second || fileContent(t, rev, "a.yaml") != "2\n" {
		t.Fatalf("second revision %s, want %s", rev, second[:7])
	}
	if w.Err() != nil || w.Last().Hash().String() != second {
		t.Fatalf("Err %v, Last %s", w.Err(), w.Last())
	}
}

// TestWatcherCoalesces: a consumer that does not keep up finds the newest
// tip, not the ones in between.
func TestWatcherCoalesces(t *testing.T) {
	rem := newRemote(t)
	rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	w := NewWatcher(open(t, rem.url, Credentials{}, t.TempDir()), "main", WatchOptions{Interval: 10 * time.Millisecond})
	run(t, w)
	var last string
	for i := 2; i <= 4; i++ {
		last = rem.commit(map[string]string{"a.yaml": string(rune('0'+i)) + "\n"}, "more")
		deadline := time.Now().Add(10 * time.Second)
		for w.Last() == nil || w.Last().Hash().String() != last {
			if time.Now().After(deadline) {
				t.Fatalf("watcher did not see commit %d (last error %v)", i, w.Err())
			}
			// why a sleep: the poll interval of this deadline wait.
			time.Sleep(10 * time.Millisecond)
		}
	}
	if rev := next(t, w, time.Second); rev.Hash().String() != last {
		t.Fatalf("got %s, want the newest %s", rev, last[:7])
	}
	select {
	case rev := <-w.Revisions():
		t.Fatalf("stale revision queued: %s", rev)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestWatcherTrigger(t *testing.T) {
	rem := newRemote(t)
	rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	w := NewWatcher(open(t, rem.url, Credentials{}, t.TempDir()), "main", WatchOptions{Interval: time.Hour})
	run(t, w)
	next(t, w, 10*time.Second)
	second := rem.commit(map[string]string{"a.yaml": "2\n"}, "second")
	w.Trigger()
	w.Trigger() // never blocks
	if rev := next(t, w, 10*time.Second); rev.Hash().String() != second {
		t.Fatalf("after Trigger: %s, want %s", rev, second[:7])
	}
}

// TestWatcherBackoff steps through the waits Run asks for: the interval
// while polls succeed, doubling delays up to MaxBackoff while they fail,
// the interval again after a success. The last revision survives failures.
func TestWatcherBackoff(t *testing.T) {
	rem := newRemote(t)
	first := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	opts := WatchOptions{Interval: 4 * time.Second, MaxBackoff: 10 * time.Second}
	url, down, _ := rem.serveHTTPSwitch("token")
	w := NewWatcher(open(t, url, Credentials{Token: "token"}, t.TempDir()), "main", opts)
	type wait struct {
		d       time.Duration
		release chan time.Time
	}
	waits := make(chan wait)
	stopped := make(chan struct{})
	w.jitter = func() float64 { return 0.5 }
	w.after = func(d time.Duration) <-chan time.Time {
		c := make(chan time.Time, 1)
		select {
		case waits <- wait{d, c}:
		case <-stopped:
		}
		return c
	}
	run(t, w)
	t.Cleanup(func() { close(stopped) })
	step := func(want time.Duration) wait {
		t.Helper()
		select {
		case wt := <-waits:
			if wt.d != want {
				t.Fatalf("wait %s, want %s (last error %v)", wt.d, want, w.Err())
			}
			return wt
		case <-time.After(10 * time.Second):
			t.Fatalf("no wait of %s asked for", want)
			return wait{}
		}
	}

	wt := step(opts.Interval)
	if rev := next(t, w, time.Second); rev.Hash().String() != first {
		t.Fatalf("first revision %s", rev)
	}
	// The remote goes down.
	down.Store(true)
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second} {
		wt.release <- time.Now()
		wt = step(d)
		if !errors.Is(w.Err(), ErrUnreachable) {
			t.Fatalf("Err = %v", w.Err())
		}
		if w.Last().Hash().String() != first {
			t.Fatalf("last revision lost: %v", w.Last())
		}
	}
	// It comes back with a new commit.
	down.Store(false)
	second := rem.commit(map[string]string{"a.yaml": "2\n"}, "second")
	wt.release <- time.Now()
	step(opts.Interval)
	if w.Err() != nil {
		t.Fatalf("Err after recovery = %v", w.Err())
	}
	if rev := next(t, w, time.Second); rev.Hash().String() != second {
		t.Fatalf("after recovery %s, want %s", rev, second[:7])
	}
}

func TestNewWatcherDefaults(t *testing.T) {
	w := NewWatcher(nil, "main", WatchOptions{Interval: time.Second})
	if w.opts != (WatchOptions{Interval: time.Second, MaxBackoff: 5 * time.Minute, Timeout: 2 * time.Minute,
		TerminalBackoff: 30 * time.Minute, CredentialCheck: 2 * time.Second}) {
		t.Fatalf("opts %+v", w.opts)
	}
}

// TestWatcherTerminal: a wrong token is not retried on the backoff
// schedule (no storm of requests to the forge); rotating the token file
// resumes polling at once, and so does Trigger.
func TestWatcherTerminal(t *testing.T) {
	rem := newRemote(t)
	first := rem.commit(map[string]string{"a.yaml": "1\n"}, "first")
	url, _, requests := rem.serveHTTPSwitch("right")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := WatchOptions{Interval: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		TerminalBackoff: time.Hour, CredentialCheck: 20 * time.Millisecond}
	w := NewWatcher(open(t, url, Credentials{TokenFile: tokenFile}, t.TempDir()), "main", opts)
	run(t, w)
	eventually(t, 10*time.Second, func() bool { return errors.Is(w.Err(), ErrAuth) })
	// On the backoff schedule (20ms), a second would see about fifty polls.
	before := requests.Load()
	time.Sleep(time.Second)
	if n := requests.Load() - before; n != 0 {
		t.Fatalf("%d requests in a second after a wrong token, want none", n)
	}
	if !strings.Contains(w.Err().Error(), "check the token in "+tokenFile) {
		t.Errorf("error does not name the fix: %v", w.Err())
	}
	// A trigger polls once more, and fails the same way.
	w.Trigger()
	eventually(t, 10*time.Second, func() bool { return requests.Load() > before })
	time.Sleep(300 * time.Millisecond)
	after := requests.Load()
	time.Sleep(500 * time.Millisecond)
	if n := requests.Load() - after; n != 0 {
		t.Fatalf("%d requests after the triggered poll, want none", n)
	}
	// The token is rotated: the watcher notices the file and resumes.
	if err := os.WriteFile(tokenFile, []byte("right\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rev := next(t, w, 10*time.Second); rev.Hash().String() != first {
		t.Fatalf("after rotation: %s, want %s", rev, first[:7])
	}
	if w.Err() != nil {
		t.Fatalf("Err after rotation = %v", w.Err())
	}
}

func eventually(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
