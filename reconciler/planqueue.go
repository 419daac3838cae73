package reconciler

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Pull-request plans run untrusted content (anyone may open a pull
// request) and are not ferry's main work. planQueue bounds them: at most
// workers plans run at once, at most waiting more wait for a worker (a
// plan past that is dropped: the next poll finds its pull request again),
// each runs under a deadline, and the record of heads already planned keeps
// only the most recent remember of them (TestPlanQueue).
type planQueue struct {
	slots    chan struct{} // one token per running plan
	waiting  chan struct{} // one token per plan waiting for a slot
	deadline time.Duration

	mu    sync.Mutex
	order *list.List               // of string keys, most recent first
	seen  map[string]*list.Element // key → its element in order
	limit int
	wg    sync.WaitGroup
}

// Defaults of the plan queue.
const (
	planWorkers  = 2
	planWaiting  = 32
	planDeadline = 2 * time.Minute
	planRemember = 1024
)

func newPlanQueue(workers, waiting, remember int, deadline time.Duration) *planQueue {
	return &planQueue{
		slots: make(chan struct{}, max(workers, 1)), waiting: make(chan struct{}, max(waiting, 1)),
		deadline: deadline, order: list.New(), seen: map[string]*list.Element{}, limit: max(remember, 1),
	}
}

// first records key (an environment and a pull request head) and reports
// whether it is new. The oldest key is forgotten past the limit.
func (q *planQueue) first(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.seen[key]; ok {
		q.order.MoveToFront(e)
		return false
	}
	q.seen[key] = q.order.PushFront(key)
	for q.order.Len() > q.limit {
		last := q.order.Back()
		q.order.Remove(last)
		delete(q.seen, last.Value.(string))
	}
	return true
}

// forget removes key, so that it is planned again: its plan was dropped or
// could not run.
func (q *planQueue) forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.seen[key]; ok {
		q.order.Remove(e)
		delete(q.seen, key)
	}
}

// submit runs fn in the pool, under the queue's deadline, and returns at
// once. It reports false, and runs nothing, when the queue is full.
func (q *planQueue) submit(ctx context.Context, fn func(context.Context)) bool {
	select {
	case q.waiting <- struct{}{}:
	default:
		return false
	}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		defer func() { <-q.waiting }()
		select {
		case q.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-q.slots }()
		ctx, cancel := context.WithTimeout(ctx, q.deadline)
		defer cancel()
		fn(ctx)
	}()
	return true
}

// wait waits for the plans submitted so far.
func (q *planQueue) wait() { q.wg.Wait() }
