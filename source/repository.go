package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Repository is a persistent bare clone of one remote URL under a cache
// directory, shared by every environment that follows a branch of that URL.
// It is safe for concurrent use; fetches are serialised.
type Repository struct {
	url     string
	display string // url without a password, for errors and logs
	dir     string
	creds   Credentials
	store   *lockedStorage

	mu      sync.Mutex   // serialises fetches
	fetches atomic.Int64 // fetches that reached the remote, for tests
}

// Open opens the clone of url under cacheDir (cacheDir/<first 16 hex digits
// of sha256(url)>), creating an empty bare repository on first use and
// reusing what earlier runs fetched otherwise. It does not contact the
// remote.
func Open(rawURL string, creds Credentials, cacheDir string) (*Repository, error) {
	display := redactURL(rawURL)
	if rawURL == "" {
		return nil, errors.New("source: empty URL")
	}
	if cacheDir == "" {
		return nil, fmt.Errorf("%s: empty cache directory", display)
	}
	sum := sha256.Sum256([]byte(rawURL))
	dir := filepath.Join(cacheDir, hex.EncodeToString(sum[:])[:16])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s cache: %w", display, err)
	}
	store := &lockedStorage{Storage: filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())}
	repo, err := git.Open(store, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = initClone(store, display)
	}
	if err != nil {
		return nil, fmt.Errorf("%s cache %s: %w", display, dir, err)
	}
	// The origin remote records which URL the directory holds, for people
	// looking at the cache and against a clash of directory names.
	if remote, err := repo.Remote("origin"); err != nil || len(remote.Config().URLs) != 1 || remote.Config().URLs[0] != display {
		return nil, fmt.Errorf("%s cache %s: holds another remote (%v)", display, dir, remoteURLs(remote, err))
	}
	return &Repository{url: rawURL, display: display, dir: dir, creds: creds, store: store}, nil
}

func initClone(store *lockedStorage, display string) (*git.Repository, error) {
	repo, err := git.Init(store, nil)
	if err != nil {
		return nil, err
	}
	_, err = repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{display}})
	return repo, err
}

func remoteURLs(remote *git.Remote, err error) any {
	if err != nil {
		return err
	}
	return remote.Config().URLs
}

// URL is the remote's URL, without any password it held.
func (r *Repository) URL() string { return r.display }

// Tip asks the remote for the commit at the tip of branch (ls-remote),
// without fetching.
//
// Cancelling ctx ends Tip and Fetch. Over SSH one step escapes it: go-git
// dials without a context, so the connect is bounded by ctx's deadline (at
// most 30s) and the SSH handshake of a server that accepts and stays silent
// is not interrupted.
func (r *Repository) Tip(ctx context.Context, branch string) (plumbing.Hash, error) {
	ref, a, err := r.prepare(ctx, branch)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return r.tip(ctx, branch, ref, a)
}

// Fetch makes the tip of branch available locally and returns it. It asks
// for the tip first and fetches only when the local branch differs from it;
// a fetch is incremental (only objects the clone lacks) and forced (a
// rewritten branch follows the remote).
func (r *Repository) Fetch(ctx context.Context, branch string) (*Revision, error) {
	ref, a, err := r.prepare(ctx, branch)
	if err != nil {
		return nil, err
	}
	tip, err := r.tip(ctx, branch, ref, a)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if local, err := r.store.Reference(ref); err != nil || local.Hash() != tip {
		if err := r.fetch(ctx, ref, a); err != nil {
			return nil, err
		}
	}
	// The branch may have moved again between ls-remote and fetch; what
	// was fetched is the newest known tip.
	local, err := r.store.Reference(ref)
	if err != nil {
		return nil, fmt.Errorf("%s branch %s: after fetch: %w", r.display, branch, err)
	}
	return r.revision(branch, local.Hash())
}

// Revision looks up a commit already fetched into the clone, e.g. the last
// healthy revision of an environment. Its Branch is empty.
func (r *Repository) Revision(hash plumbing.Hash) (*Revision, error) {
	return r.revision("", hash)
}

func (r *Repository) prepare(ctx context.Context, branch string) (plumbing.ReferenceName, *auth, error) {
	ref := plumbing.NewBranchReferenceName(branch)
	if branch == "" || ref.Validate() != nil {
		return "", nil, fmt.Errorf("%s branch %q: invalid branch name", r.display, branch)
	}
	deadline, _ := ctx.Deadline()
	a, err := r.creds.resolve(r.url, deadline)
	if err != nil {
		return "", nil, fmt.Errorf("%s credentials: %w", r.display, err)
	}
	return ref, a, nil
}

func (r *Repository) tip(ctx context.Context, branch string, ref plumbing.ReferenceName, a *auth) (plumbing.Hash, error) {
	remote := git.NewRemote(r.store, &config.RemoteConfig{Name: "origin", URLs: []string{r.url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: a.method})
	if err != nil {
		return plumbing.ZeroHash, r.fail(ctx, "ls-remote", err, a)
	}
	for _, x := range refs {
		if x.Name() == ref {
			return x.Hash(), nil
		}
	}
	return plumbing.ZeroHash, fmt.Errorf("%s branch %s: %w", r.display, branch, ErrBranchNotFound)
}

func (r *Repository) fetch(ctx context.Context, ref plumbing.ReferenceName, a *auth) error {
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", ref, ref))
	remote := git.NewRemote(r.store, &config.RemoteConfig{Name: "origin", URLs: []string{r.url}, Fetch: []config.RefSpec{spec}})
	err := remote.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{spec},
		Auth:       a.method,
		Tags:       git.NoTags,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return r.fail(ctx, "fetch "+ref.Short(), err, a)
	}
	r.fetches.Add(1)
	return nil
}

func (r *Repository) revision(branch string, hash plumbing.Hash) (*Revision, error) {
	commit, err := object.GetCommit(r.store, hash)
	if err != nil {
		return nil, fmt.Errorf("%s commit %s: %w", r.display, hash, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("%s commit %s tree: %w", r.display, hash, err)
	}
	return &Revision{Branch: branch, Commit: commit, Tree: tree}, nil
}

// redactURL hides the password of a URL that carries one.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
