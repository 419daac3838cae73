package render

import (
	"context"
	"fmt"
	"path"
	"runtime"
	"sync"
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
	// Builds bounds the renderings built at once (default GOMAXPROCS). A
	// build is CPU-bound: more at once finish no sooner, and each holds
	// its whole rendering in memory several times over while it runs.
	Builds int
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

// Renderer renders directories of git trees and caches the renderings. It is
// safe for concurrent use; concurrent calls for the same tree and directory
// share one build.
type Renderer struct {
	limits  Limits
	cache   *lru
	flights singleflight.Group
	builds  atomic.Int64 // renderings built, not served from the cache
	// slots bound the builds that run at once; started holds when each
	// build got its slot, by cache key (zero while it waits for one).
	slots     chan struct{}
	startedMu sync.Mutex
	started   map[string]time.Time
}

// NewRenderer returns a Renderer with opts.
func NewRenderer(opts Options) *Renderer {
	if opts.Builds < 1 {
		opts.Builds = runtime.GOMAXPROCS(0)
	}
	return &Renderer{cache: newLRU(opts.CacheSize), limits: opts.Limits.orDefault(),
		slots: make(chan struct{}, opts.Builds), started: map[string]time.Time{}}
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
// A SOPS-encrypted file fails the rendering: Render has no keys; see
// [Renderer.RenderWith].
func (r *Renderer) Render(ctx context.Context, tree *object.Tree, dir string) (*Result, error) {
	return r.RenderWith(ctx, tree, dir, Input{Limits: r.limits})
}

// Input is what one environment brings to a rendering besides the tree:
// its limits and its decryption keys.
type Input struct {
	// Limits bound the rendering; zero fields take their [DefaultLimits].
	Limits Limits
	// Keys decrypt SOPS-encrypted files; nil decrypts nothing, so an
	// encrypted file fails the rendering.
	Keys *Keys
}

// RenderWith is [Renderer.Render] within in.Limits instead of the
// Renderer's own, and with in.Keys. Renderings within different limits or
// with different keys are cached apart. It returns once in.Limits.Timeout
// has passed, even if kustomize is busy: the build fails at its next read
// of the repository.
//
// Every file the build reads that is encrypted with SOPS (YAML or JSON,
// whole or in part with encrypted_regex and its kin; dotenv, INI and binary
// files for secretGenerators) is decrypted with in.Keys as it is read,
// before kustomize sees it, and its MAC is checked. Nothing decrypted is
// written anywhere: the rendering, plaintext included, lives in memory and
// in the in-memory cache, keyed by the keys too, so an environment never
// gets a rendering decrypted with another's keys.
//
// A file over MaxEncryptedFileSize, a file with no key of in.Keys among its
// recipients (or no keys at all), or one whose MAC or values do not check
// fails the rendering, with an error naming the file and the recipients'
// public keys or fingerprints. So does a rendering where a decrypted value
// shows outside the data and stringData of a Secret (a kustomize
// replacement copying it into a ConfigMap, say): only Secrets' values are
// masked in diffs. Errors never quote a decrypted value.
//
// The digest is of the decrypted rendering, so encrypting the same content
// again (new data key, new ciphertexts) does not change it.
func (r *Renderer) RenderWith(ctx context.Context, tree *object.Tree, dir string, in Input) (*Result, error) {
	limits := in.Limits.orDefault()
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
	key := cacheKey{tree: tree.Hash, dir: rel, limits: limits.String(), keys: in.Keys.cacheID()}
	if res, ok := r.cache.get(key); ok {
		return decoded(rel, res)
	}
	ch := r.flights.DoChan(key.String(), func() (any, error) {
		// Another flight may have filled the cache since the check above.
		if res, ok := r.cache.get(key); ok {
			return res, nil
		}
		defer r.slot(key.String())()
		res, err := r.build(tree, rel, limits, in.Keys)
		if err != nil {
			return nil, err
		}
		st, err := store(res)
		if err != nil {
			return nil, err
		}
		r.cache.add(key, st)
		return st, nil
	})
	// The deadline counts from the build's start: a build waiting for a
	// slot behind other environments' has not used its time. A caller that
	// joins a build already under way (a retry of one that ran past its
	// deadline) waits its own full timeout for it.
	called := time.Now()
	deadline := time.NewTimer(limits.Timeout + time.Second)
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s render: %w", displayDir(rel), ctx.Err())
		case <-deadline.C:
			if wait := r.remaining(key.String(), called, limits.Timeout+time.Second); wait > 0 {
				deadline.Reset(wait)
				continue
			}
			return nil, fmt.Errorf("%s render: %w", displayDir(rel), deadlineError(limits.Timeout))
		case out := <-ch:
			if out.Err != nil {
				return nil, fmt.Errorf("%s render: %w", displayDir(rel), out.Err)
			}
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%s render: %w", displayDir(rel), err)
			}
			return decoded(rel, out.Val.(*stored))
		}
	}
}

// decoded is a stored rendering of dir, decoded for one caller.
func decoded(dir string, st *stored) (*Result, error) {
	res, err := st.result()
	if err != nil {
		return nil, fmt.Errorf("%s render: %w", displayDir(dir), err)
	}
	return res, nil
}

// slot waits for a build slot for key and returns its release.
func (r *Renderer) slot(key string) func() {
	r.startedMu.Lock()
	r.started[key] = time.Time{} // queued
	r.startedMu.Unlock()
	r.slots <- struct{}{}
	r.startedMu.Lock()
	r.started[key] = time.Now()
	r.startedMu.Unlock()
	return func() {
		r.startedMu.Lock()
		delete(r.started, key)
		r.startedMu.Unlock()
		<-r.slots
	}
}

// remaining is how much of timeout a caller since called has left to
// wait for the build of key: all of it while the build waits for a slot,
// none once it has ended; the clock starts at the later of called and the
// build's start.
func (r *Renderer) remaining(key string, called time.Time, timeout time.Duration) time.Duration {
	r.startedMu.Lock()
	defer r.startedMu.Unlock()
	at, ok := r.started[key]
	switch {
	case !ok:
		return 0
	case at.IsZero():
		return timeout // queued behind other builds
	}
	if at.Before(called) {
		at = called
	}
	return time.Until(at.Add(timeout))
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

// build renders dir of tree within limits, decrypting with keys:
// kustomize when dir has a kustomization, the plain files otherwise.
func (r *Renderer) build(tree *object.Tree, dir string, limits Limits, keys *Keys) (*Result, error) {
	r.builds.Add(1)
	f, err := newTreeFS(tree)
	if err != nil {
		return nil, err
	}
	f.budget = newBudget(limits)
	f.dec = newDecryptor(keys)
	objs, files, err := r.objects(f, dir)
	// Kustomize wraps a file's read error in its own words, more than
	// once, or may go on without the file; the decryption error alone says
	// what is wrong, and fails the rendering either way.
	if f.dec.err != nil {
		return nil, f.dec.err
	}
	if err != nil {
		return nil, f.dec.redactErr(err)
	}
	if err := f.budget.objects(len(objs)); err != nil {
		return nil, err
	}
	if err := f.dec.check(objs); err != nil {
		return nil, err
	}
	d, err := digest(objs, f.budget)
	if err != nil {
		return nil, f.dec.redactErr(err)
	}
	return &Result{Objects: objs, Files: files, Digest: d}, nil
}

// objects renders dir of f's tree, and names the file of each object.
func (r *Renderer) objects(f *treeFS, dir string) ([]*unstructured.Unstructured, []string, error) {
	rel, n, err := f.resolveRel(dir)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("%s: %w", displayDir(dir), err)
	case n == nil:
		return nil, nil, fmt.Errorf("%s: %w", displayDir(dir), errMissing)
	case !n.isDir():
		return nil, nil, fmt.Errorf("%s: not a directory", displayDir(dir))
	}
	kfile, err := f.kustomizationFile(rel)
	if err != nil {
		return nil, nil, err
	}
	var objs []*unstructured.Unstructured
	var files []string
	if kfile != "" {
		if err := checkRefs(f, rel); err != nil {
			return nil, nil, err
		}
		objs, files, err = kustomize(f, rel, kfile)
	} else {
		objs, files, err = plain(f, dir, rel)
	}
	if err != nil {
		return nil, nil, err
	}
	return objs, files, nil
}
