// Package lru is a bounded least-recently-used map, safe for concurrent
// use: the forge reporter remembers what it posted in one, the server the
// webhook deliveries it saw.
package lru

import (
	"container/list"
	"sync"
)

// Map is a bounded least-recently-used map, safe for concurrent use.
type Map[K comparable, V any] struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *entry[K, V], most recently used first
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a map of at most size entries (at least one).
func New[K comparable, V any](size int) *Map[K, V] {
	return &Map[K, V]{size: max(size, 1), order: list.New(), items: map[K]*list.Element{}}
}

// Get returns the value of k and marks it used.
func (c *Map[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry[K, V]).val, true
}

// Put sets k to v, dropping the least recently used entry when full.
func (c *Map[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *Map[K, V]) putLocked(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*entry[K, V]).val = v
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&entry[K, V]{key: k, val: v})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*entry[K, V]).key)
	}
}

// Add puts k with v unless k is there already; it reports whether k was
// added. It is the check-and-set of replay protection, in one lock.
func (c *Map[K, V]) Add(k K, v V) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		return false
	}
	c.putLocked(k, v)
	return true
}

// Remove forgets k.
func (c *Map[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.Remove(e)
		delete(c.items, k)
	}
}
