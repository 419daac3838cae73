package render

import (
	"container/list"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/go-git/go-git/v5/plumbing"

	"ferry.dev/ferry/internal/packed"
)

// cacheKey names one rendering: the commit's root tree and the directory.
//
// It is the root tree, not the tree of dir, because an overlay reaches
// outside its directory (resources: ../../base): two commits with the same
// envs/staging tree but different bases render differently
// (TestCacheKeyIsRootTree pins it). The root tree hash covers every file
// kustomize may read, and nothing else goes into a rendering.
//
// keys identifies the decryption keys by their public side ("" for none):
// the same tree renders differently, or not at all, with other keys.
type cacheKey struct {
	tree   plumbing.Hash
	dir    string
	limits string // a rendering within other limits may have failed
	keys   string
}

func (k cacheKey) String() string {
	return k.tree.String() + ":" + k.keys + ":" + k.dir + ":" + k.limits
}

// lru is a bounded least-recently-used map of renderings, safe for
// concurrent use. A nil *lru caches nothing.
type lru struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *lruEntry, most recently used first
	items map[cacheKey]*list.Element
}

type lruEntry struct {
	key cacheKey
	res *stored
}

// newLRU returns a cache of size entries, or nil when size < 1.
func newLRU(size int) *lru {
	if size < 1 {
		return nil
	}
	return &lru{size: size, order: list.New(), items: map[cacheKey]*list.Element{}}
}

// get returns the cached rendering for k.
func (c *lru) get(k cacheKey) (*stored, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruEntry).res, true
}

// add caches res under k, dropping the least recently used entry when full.
func (c *lru) add(k cacheKey, res *stored) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry).res = res
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&lruEntry{key: k, res: res})
	for c.order.Len() > c.size {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}

// stored is a rendering as the cache keeps it: its objects' JSON, packed
// (a rendering's objects repeat each other, so the block is a fraction of
// their JSON, itself a third of their size as maps), and nothing for the
// collector to scan. Every caller gets objects of its own, decoded from it.
type stored struct {
	objs   packed.List
	files  []string
	digest string
}

func store(r *Result) (*stored, error) {
	objs := make([][]byte, len(r.Objects))
	for i, o := range r.Objects {
		data, err := o.MarshalJSON()
		if err != nil {
			return nil, err
		}
		objs[i] = data
	}
	l, err := packed.Pack(objs)
	if err != nil {
		return nil, err
	}
	return &stored{objs: l, files: r.Files, digest: r.Digest}, nil
}

// result decodes s into a Result of the caller's own.
func (s *stored) result() (*Result, error) {
	all, err := s.objs.Unpack()
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, len(all))
	for i, data := range all {
		o, err := objectFromJSON(data)
		if err != nil {
			return nil, err
		}
		objs[i] = o
	}
	return &Result{Objects: objs, Files: slices.Clone(s.files), Digest: s.digest}, nil
}
