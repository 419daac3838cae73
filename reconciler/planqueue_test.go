package reconciler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPlanQueue pins the bounds of pull-request plans: two at a time, a
// full queue refuses, each plan under its deadline, and the record of
// planned heads keeps the most recent ones only.
func TestPlanQueue(t *testing.T) {
	q := newPlanQueue(2, 3, 3, 50*time.Millisecond)
	var running, peak atomic.Int32
	release := make(chan struct{})
	var deadlines sync.Map
	for i := range 3 {
		if !q.submit(t.Context(), func(ctx context.Context) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			d, _ := ctx.Deadline()
			deadlines.Store(i, time.Until(d))
			<-release
			running.Add(-1)
		}) {
			t.Fatalf("plan %d refused with room in the queue", i)
		}
	}
	if q.submit(t.Context(), func(context.Context) {}) {
		t.Fatal("a fourth plan was taken into a queue of three")
	}
	for deadline := time.Now().Add(5 * time.Second); running.Load() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the pool's workers start on their own goroutines
	}
	time.Sleep(10 * time.Millisecond) // a third worker, if the bound were broken, would start now
	close(release)
	q.wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("%d plans ran at once, want 2", p)
	}
	deadlines.Range(func(k, v any) bool {
		if d := v.(time.Duration); d <= 0 || d > 50*time.Millisecond {
			t.Errorf("plan %v ran with %s left, want the queue's deadline", k, d)
		}
		return true
	})

	for i := range 5 {
		if !q.first(fmt.Sprint(i)) {
			t.Fatalf("head %d seen before", i)
		}
	}
	if q.first("4") || q.first("3") || q.first("2") {
		t.Error("a recent head planned twice")
	}
	if !q.first("0") {
		t.Error("the oldest head is still remembered past the limit")
	}
	if q.order.Len() != 3 || len(q.seen) != 3 {
		t.Errorf("remembers %d heads, want 3", q.order.Len())
	}
	q.forget("0")
	if !q.first("0") {
		t.Error("a forgotten head is not planned again")
	}
}
