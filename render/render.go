package render

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Options configures a Renderer.
type Options struct {
	// CacheSize is how many renderings the Renderer keeps, keyed by commit
	// tree and directory; the least recently used is dropped first. Zero
	// (or less) turns the cache off.
	CacheSize int
	// Limits bound each rendering of [Renderer.Render]; zero fields take
	// their [DefaultLimits].
	Limits Limits
}

// DefaultOptions returns the options ferry runs with: a cache of 64
// renderings and [DefaultLimits].
func DefaultOptions() Options {
	return Options{CacheSize: 64, Limits: DefaultLimits()}
}

// Result is one rendering of a directory at a commit.
type Result struct {
	// Objects are the rendered objects in kustomize's output order (for a
	// plain directory: file path order, then document order). They are the
	// caller's own copies.
	Objects []*unstructured.Unstructured
	// Files[i] is the repository path of the file Objects[i] came from,
	// such as envs/staging/app.yaml; "" where kustomize does not say (an
	// object a transformer made).
	Files []string
	// Digest is "sha256:<hex>" of the normalised rendering: it changes with
	// any content change and with nothing else (not key order, not object
	// order).
	Digest string
}

// clone deep-copies r, so that no caller can change a cached rendering.
func (r *Result) clone() *Result {
	objs := make([]*unstructured.Unstructured, len(r.Objects))
	for i, o := range r.Objects {
		objs[i] = o.DeepCopy()
	}
	return &Result{Objects: objs, Files: slices.Clone(r.Files), Digest: r.Digest}
}

// Renderer renders directories of git trees and caches the renderings. It is
// safe for concurrent use; concurrent calls for the same tree and directory
// share one build.
type Renderer struct {
	limits  Limits
	cache   *lru
	flights singleflight.Group
	builds  atomic.Int64 // renderings built, not served from the cache
}

// NewRenderer returns a Renderer with opts.
func NewRenderer(opts Options) *Renderer {
	return &Renderer{cache: newLRU(opts.CacheSize), limits: opts.Limits.orDefault()}
}

// Render builds dir, a slash path relative to the repository root (say
// "envs/staging"; "" or "." for the root), of the commit whose root tree is
// tree.
//
// A directory with a kustomization file (kustomization.yaml,
// kustomization.yml or Kustomization) is built with kustomize: no plugins,
// no Helm, no remote bases or files, files only from under the
// kustomization's own directory, bases from anywhere in the repository. A
// directory without one is rendered as all its YAML and JSON files, below it
// included, in path order.
//
// The same tree and directory are rendered once while the rendering stays in
// the cache; failures are not cached. ctx is checked before and after the
// build (kustomize itself cannot be interrupted): if ctx ends while the build
// runs, Render returns ctx's error at once and the build finishes in the
// background, into the cache.
//
// Errors name the directory first, then the file and, where the YAML parser
// gives it, the line: "envs/staging render: envs/staging/app.yaml: yaml: line
// 3: ...". Apart from ctx's errors and the repository storage's, they come
// from the commit's content and stay until a new commit. A rendering over
// one of the Renderer's [Limits] fails with an error matching [ErrLimit].
func (r *Renderer) Render(ctx context.Context, tree *object.Tree, dir string) (*Result, error) {
	return r.RenderLimited(ctx, tree, dir, r.limits)
}

// RenderLimited is [Renderer.Render] within limits instead of the
// Renderer's own; zero fields take their [DefaultLimits]. Renderings within
// different limits are cached apart. Render returns once limits.Timeout has
// passed, even if kustomize is busy: the build fails at its next read of
// the repository.
func (r *Renderer) RenderLimited(ctx context.Context, tree *object.Tree, dir string, limits Limits) (*Result, error) {
	limits = limits.orDefault()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s render: %w", dir, err)
	}
	if tree == nil {
		return nil, fmt.Errorf("%s render: no tree", dir)
	}
	rel, err := cleanDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s render: %w", dir, err)
	}
	key := cacheKey{tree: tree.Hash, dir: rel, limits: limits.String()}
	if res, ok := r.cache.get(key); ok {
		return res.clone(), nil
	}
	ch := r.flights.DoChan(key.String(), func() (any, error) {
		// Another flight may have filled the cache since the check above.
		if res, ok := r.cache.get(key); ok {
			return res, nil
		}
		res, err := r.build(tree, rel, limits)
		if err != nil {
			return nil, err
		}
		r.cache.add(key, res)
		return res, nil
	})
	deadline := time.NewTimer(limits.Timeout + time.Second)
	defer deadline.Stop()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s render: %w", displayDir(rel), ctx.Err())
	case <-deadline.C:
		return nil, fmt.Errorf("%s render: %w: the rendering ran past its deadline of %s (limits.renderTimeout)", displayDir(rel), ErrLimit, limits.Timeout)
	case out := <-ch:
		if out.Err != nil {
			return nil, fmt.Errorf("%s render: %w", displayDir(rel), out.Err)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s render: %w", displayDir(rel), err)
		}
		return out.Val.(*Result).clone(), nil
	}
}

// cleanDir turns the directory asked for into a cleaned repository-relative
// path ("" for the root), refusing one that leaves the repository.
func cleanDir(dir string) (string, error) {
	if path.IsAbs(dir) {
		return "", errEscape
	}
	rel := path.Clean(dir) // lexical, as kustomize cleans paths
	if escapes(rel) {
		return "", errEscape
	}
	if rel == "." {
		rel = ""
	}
	return rel, nil
}

// build renders dir of tree: kustomize when dir has a kustomization, the
// plain files otherwise.
func (r *Renderer) build(tree *object.Tree, dir string, limits Limits) (*Result, error) {
	r.builds.Add(1)
	f, err := newTreeFS(tree)
	if err != nil {
		return nil, err
	}
	f.budget = newBudget(limits)
	rel, n, err := f.resolveRel(dir)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s: %w", displayDir(dir), err)
	case n == nil:
		return nil, fmt.Errorf("%s: %w", displayDir(dir), errMissing)
	case !n.isDir():
		return nil, fmt.Errorf("%s: not a directory", displayDir(dir))
	}
	kfile, err := f.kustomizationFile(rel)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	var files []string
	if kfile != "" {
		if err := checkRefs(f, rel); err != nil {
			return nil, err
		}
		objs, files, err = kustomize(f, rel, kfile)
	} else {
		objs, files, err = plain(f, dir, rel)
	}
	if err != nil {
		return nil, err
	}
	if err := f.budget.objects(len(objs)); err != nil {
		return nil, err
	}
	d, err := digest(objs, f.budget)
	if err != nil {
		return nil, err
	}
	return &Result{Objects: objs, Files: files, Digest: d}, nil
}
