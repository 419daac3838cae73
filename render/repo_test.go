package render

import (
	"path"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
)

// files describes repository content: path → content, where a content of
// "-> target" makes the path a symbolic link to target.
type files map[string]string

// testRepo is a real git repository in memory (memory storage, memfs
// worktree) that tests commit to.
type testRepo struct {
	t       *testing.T
	storage *memory.Storage
	repo    *git.Repository
	wt      *git.Worktree
	fs      billy.Filesystem
	n       int
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	fs := memfs.New()
	storage := memory.NewStorage()
	repo, err := git.Init(storage, fs)
	if err != nil {
		t.Fatalf("git init: %v", err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatalf("worktree: %v", err)
	}
	return &testRepo{t: t, storage: storage, repo: repo, wt: wt, fs: fs}
}

// write writes fs into the worktree, replacing what is there.
func (r *testRepo) write(fs files) {
	r.t.Helper()
	for name, content := range fs {
		if err := r.fs.MkdirAll(path.Dir(name), 0o755); err != nil {
			r.t.Fatalf("mkdir %s: %v", path.Dir(name), err)
		}
		_ = r.fs.Remove(name)
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := r.fs.Symlink(target, name); err != nil {
				r.t.Fatalf("symlink %s: %v", name, err)
			}
			continue
		}
		f, err := r.fs.Create(name)
		if err != nil {
			r.t.Fatalf("create %s: %v", name, err)
		}
		if _, err := f.Write([]byte(content)); err != nil {
			r.t.Fatalf("write %s: %v", name, err)
		}
		if err := f.Close(); err != nil {
			r.t.Fatalf("close %s: %v", name, err)
		}
	}
}

// commit commits the worktree and returns the commit's root tree.
func (r *testRepo) commit() *object.Tree {
	r.t.Helper()
	if err := r.wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatalf("git add: %v", err)
	}
	r.n++
	sig := &object.Signature{Name: "ferry test", Email: "test@ferry.dev", When: time.Unix(1700000000+int64(r.n), 0)}
	h, err := r.wt.Commit("test commit", &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatalf("git commit: %v", err)
	}
	c, err := r.repo.CommitObject(h)
	if err != nil {
		r.t.Fatalf("commit object: %v", err)
	}
	tree, err := c.Tree()
	if err != nil {
		r.t.Fatalf("commit tree: %v", err)
	}
	return tree
}

// commitFiles commits fs to a new repository and returns the root tree.
func commitFiles(t *testing.T, fs files) *object.Tree {
	t.Helper()
	r := newTestRepo(t)
	r.write(fs)
	return r.commit()
}
