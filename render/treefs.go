package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// repoRoot is where the tree filesystem serves the repository. Relative paths
// are taken from here, so callers rarely need to spell it.
const repoRoot = "/repo"

// maxSymlinks bounds how many symbolic links one lookup follows, as the
// operating system does, so a loop of links fails instead of spinning.
const maxSymlinks = 40

var (
	// errEscape marks a path that leaves the repository: through "..", as an
	// absolute path, or through a symbolic link whose target is outside.
	errEscape = errors.New("path escapes the repository")
	// errReadOnly is returned by every method of the tree filesystem that
	// would write.
	errReadOnly = errors.New("repository filesystem is read-only")
)

// node is one entry of the indexed tree.
type node struct {
	mode     filemode.FileMode
	hash     plumbing.Hash
	children []string // base names, sorted; directories only
}

func (n *node) isDir() bool  { return n.mode == filemode.Dir }
func (n *node) isLink() bool { return n.mode == filemode.Symlink }

// isRegular reports whether n is a file whose content is in the repository
// (not a directory, a symbolic link or a submodule).
func (n *node) isRegular() bool {
	return n.mode == filemode.Regular || n.mode == filemode.Executable || n.mode == filemode.Deprecated
}

// treeFS is a read-only filesys.FileSystem over a git tree.
//
// The whole tree (its tree objects, not its blobs) is indexed once, up
// front, instead of being looked up lazily through object.Tree: the lookup
// methods of object.Tree fill caches inside the tree without a lock, and the
// caller's tree may be shared between goroutines.
type treeFS struct {
	tree  *object.Tree
	nodes map[string]*node // repository-relative slash path → entry; "" is the root
	err   error            // set when the tree could not be indexed

	// budget, when set, bounds the reads of one rendering (limits.go).
	budget *budget
	// checked holds the blobs already admitted, so that a file kustomize
	// reads again is neither counted nor scanned twice.
	checked map[plumbing.Hash]bool
	// dec, when set, decrypts SOPS-encrypted files as they are read, so
	// that kustomize builds from the plaintext: its transformers change
	// the objects, which would break the MAC of an encrypted manifest
	// decrypted after the build. Nil for NewTreeFS's readers.
	dec *decryptor
}

// NewTreeFS returns a read-only filesystem over tree, the root tree of a
// commit, for kustomize and for anything else that reads a
// filesys.FileSystem. The repository is served under the virtual directory
// /repo; relative paths are taken from there.
//
// Every method that would write fails. Every path that resolves outside the
// repository fails with an error naming the path and saying it "escapes the
// repository": "..", absolute paths elsewhere, and symbolic links (git mode
// 120000) whose target leaves the repository. Symbolic links that stay
// inside the repository are followed, so a directory or file may be shared
// through a link; kustomize's own root-only load restriction then applies to
// the link's target, as it does on disk. Submodules are not part of the
// repository's content: reading one fails.
//
// If the tree cannot be read from its storage, every method fails with that
// error (methods that return a bool return false).
func NewTreeFS(tree *object.Tree) filesys.FileSystem {
	f, err := newTreeFS(tree)
	if err != nil {
		return &treeFS{err: err}
	}
	return f
}

// newTreeFS indexes tree.
func newTreeFS(tree *object.Tree) (*treeFS, error) {
	if tree == nil {
		return nil, errors.New("tree filesystem: no tree")
	}
	f := &treeFS{tree: tree, nodes: map[string]*node{"": {mode: filemode.Dir, hash: tree.Hash}}}
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, e, err := w.Next()
		if errors.Is(err, io.EOF) {
			// The walker also reports io.EOF, with the entry's name, when a
			// subtree cannot be read; a partial index would render part of
			// the repository, so that is an error here
			// (TestTreeFSUnreadableTree).
			if name != "" {
				return nil, fmt.Errorf("tree %s: %s: subtree %s cannot be read from the repository storage", tree.Hash, name, e.Hash)
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tree %s: %s: %w", tree.Hash, name, err)
		}
		f.nodes[name] = &node{mode: e.Mode, hash: e.Hash}
		parent := f.nodes[parentDir(name)] // the walker yields a directory before its entries
		if parent == nil {
			return nil, fmt.Errorf("tree %s: %s: entry seen before its directory", tree.Hash, name)
		}
		parent.children = append(parent.children, path.Base(name))
	}
	for _, n := range f.nodes {
		slices.Sort(n.children)
	}
	return f, nil
}

// parentDir is path.Dir for repository-relative paths, where the root is "".
func parentDir(rel string) string {
	d := path.Dir(rel)
	if d == "." {
		return ""
	}
	return d
}

// absPath turns a repository-relative path into the filesystem's absolute one.
func absPath(rel string) string {
	if rel == "" {
		return repoRoot
	}
	return repoRoot + "/" + rel
}

// repoPath turns a filesystem path (absolute, or relative to the repository
// root) into a cleaned repository-relative path, or errEscape.
func repoPath(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty path: %w", fs.ErrNotExist)
	}
	p := filepath.ToSlash(name)
	if !path.IsAbs(p) {
		p = repoRoot + "/" + p
	}
	p = path.Clean(p)
	switch {
	case p == repoRoot:
		return "", nil
	case strings.HasPrefix(p, repoRoot+"/"):
		return p[len(repoRoot)+1:], nil
	}
	return "", errEscape
}

// escapes reports whether a cleaned relative path climbs above its start.
func escapes(rel string) bool {
	return rel == ".." || strings.HasPrefix(rel, "../")
}

// splitPath splits a repository-relative path into its elements.
func splitPath(rel string) []string {
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}

// resolve is resolveRel for a filesystem path; errors name the path.
func (f *treeFS) resolve(name string) (string, *node, error) {
	if f.err != nil {
		return "", nil, f.err
	}
	if err := f.budget.live(); err != nil {
		return "", nil, fmt.Errorf("%s: %w", name, err)
	}
	rel, err := repoPath(name)
	if err == nil {
		var n *node
		rel, n, err = f.resolveRel(rel)
		if err == nil {
			return rel, n, nil
		}
	}
	return "", nil, fmt.Errorf("%s: %w", name, err)
}

// resolveRel follows the symbolic links in a cleaned repository-relative path
// and returns the path it names and the entry there, or a nil entry when
// nothing is there. It fails when a link leads out of the repository.
func (f *treeFS) resolveRel(rel string) (string, *node, error) {
	rest := splitPath(rel)
	var done []string
	links := 0
	for len(rest) > 0 {
		cur := path.Join(append(done, rest[0])...)
		n := f.nodes[cur]
		switch {
		case n == nil:
			return path.Join(append([]string{cur}, rest[1:]...)...), nil, nil
		case n.isLink():
			links++
			if links > maxSymlinks {
				return "", nil, fmt.Errorf("symlink %s: too many levels of symbolic links", cur)
			}
			b, err := f.readBlob(cur, n)
			if err != nil {
				return "", nil, err
			}
			target := string(b)
			next := path.Join(parentDir(cur), target)
			if path.IsAbs(target) || escapes(next) {
				return "", nil, fmt.Errorf("symlink %s -> %s: %w", cur, target, errEscape)
			}
			if next == "." {
				next = ""
			}
			rest = append(splitPath(next), rest[1:]...)
			done = nil
		case len(rest) > 1 && !n.isDir():
			// A file used as a directory: nothing is there.
			return path.Join(append([]string{cur}, rest[1:]...)...), nil, nil
		default:
			done = append(done, rest[0])
			rest = rest[1:]
		}
	}
	p := path.Join(done...)
	return p, f.nodes[p], nil
}

// readBlob reads the content of the entry at rel.
func (f *treeFS) readBlob(rel string, n *node) ([]byte, error) {
	file, err := f.tree.TreeEntryFile(&object.TreeEntry{Name: path.Base(rel), Mode: n.mode, Hash: n.hash})
	if err != nil {
		return nil, fmt.Errorf("%s: read blob %s: %w", rel, n.hash, err)
	}
	if f.budget != nil && !f.checked[n.hash] {
		if err := f.budget.file(rel, file.Size); err != nil {
			return nil, err
		}
	}
	r, err := file.Reader()
	if err != nil {
		return nil, fmt.Errorf("%s: read blob %s: %w", rel, n.hash, err)
	}
	defer r.Close()
	// The size was admitted above; the reader is bounded too, in case the
	// storage disagrees with itself.
	b, err := io.ReadAll(io.LimitReader(r, file.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read blob %s: %w", rel, n.hash, err)
	}
	if f.budget != nil && !f.checked[n.hash] {
		if !n.isLink() {
			if err := checkAliases(rel, b); err != nil {
				return nil, f.budget.refuse(err)
			}
		}
		if f.checked == nil {
			f.checked = map[plumbing.Hash]bool{}
		}
		f.checked[n.hash] = true
	}
	return b, nil
}

// readRel reads the regular file at the resolved path rel; name is the path
// to show in errors.
func (f *treeFS) readRel(name, rel string, n *node) ([]byte, error) {
	switch {
	case n == nil:
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	case n.isDir():
		return nil, fmt.Errorf("%s: is a directory", name)
	case !n.isRegular():
		return nil, fmt.Errorf("%s: is a submodule, whose files are not in the repository", name)
	}
	return f.readBlob(rel, n)
}

// content reads the regular file at the resolved path rel, decrypted when
// the filesystem decrypts and the file is SOPS-encrypted; name is the path
// to show in errors.
func (f *treeFS) content(name, rel string, n *node) ([]byte, error) {
	b, err := f.readRel(name, rel, n)
	if err != nil || f.dec == nil {
		return b, err
	}
	return f.dec.open(rel, b)
}

// kustomizationFile returns the repository-relative path of the
// kustomization file in dir, or "" when dir has none.
func (f *treeFS) kustomizationFile(dir string) (string, error) {
	var found []string
	for _, base := range kustomizationFileNames {
		p := path.Join(dir, base)
		_, n, err := f.resolveRel(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p, err)
		}
		if n != nil && !n.isDir() {
			found = append(found, p)
		}
	}
	if len(found) > 1 {
		return "", fmt.Errorf("%s: more than one kustomization file: %s", displayDir(dir), strings.Join(found, ", "))
	}
	if len(found) == 0 {
		return "", nil
	}
	return found[0], nil
}

func readOnly(name string) error { return fmt.Errorf("%s: %w", name, errReadOnly) }

// Create fails: the filesystem is read-only.
func (f *treeFS) Create(name string) (filesys.File, error) { return nil, readOnly(name) }

// Mkdir fails: the filesystem is read-only.
func (f *treeFS) Mkdir(name string) error { return readOnly(name) }

// MkdirAll fails: the filesystem is read-only.
func (f *treeFS) MkdirAll(name string) error { return readOnly(name) }

// RemoveAll fails: the filesystem is read-only.
func (f *treeFS) RemoveAll(name string) error { return readOnly(name) }

// WriteFile fails: the filesystem is read-only.
func (f *treeFS) WriteFile(name string, _ []byte) error { return readOnly(name) }

// Open opens a file (or directory) for reading; writes to it fail.
func (f *treeFS) Open(name string) (filesys.File, error) {
	rel, n, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if n.isDir() {
		return &treeFile{name: name, info: fileInfo{name: path.Base(absPath(rel)), mode: fs.ModeDir | 0o555}}, nil
	}
	b, err := f.content(name, rel, n)
	if err != nil {
		return nil, err
	}
	info := fileInfo{name: path.Base(rel), size: int64(len(b)), mode: modeOf(n)}
	return &treeFile{name: name, info: info, r: bytes.NewReader(b)}, nil
}

// IsDir reports whether name resolves to a directory of the repository.
func (f *treeFS) IsDir(name string) bool {
	_, n, err := f.resolve(name)
	return err == nil && n != nil && n.isDir()
}

// ReadDir returns the sorted names of the entries of a directory.
func (f *treeFS) ReadDir(name string) ([]string, error) {
	_, n, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	if n == nil {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if !n.isDir() {
		return nil, fmt.Errorf("%s: not a directory", name)
	}
	return slices.Clone(n.children), nil
}

// CleanedAbs returns the absolute directory name resolves to, symbolic links
// followed, and the file name within it ("" when name is a directory).
func (f *treeFS) CleanedAbs(name string) (filesys.ConfirmedDir, string, error) {
	rel, n, err := f.resolve(name)
	if err != nil {
		return "", "", err
	}
	if n == nil {
		return "", "", fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if n.isDir() {
		return filesys.ConfirmedDir(absPath(rel)), "", nil
	}
	return filesys.ConfirmedDir(absPath(parentDir(rel))), path.Base(rel), nil
}

// Exists reports whether name resolves to an entry of the repository.
func (f *treeFS) Exists(name string) bool {
	_, n, err := f.resolve(name)
	return err == nil && n != nil
}

// Glob returns the sorted absolute paths of the repository's entries that
// match pattern (path.Match syntax). Names are matched as stored in the
// tree: symbolic links are not followed.
func (f *treeFS) Glob(pattern string) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	if err := f.budget.live(); err != nil {
		return nil, fmt.Errorf("%s: %w", pattern, err)
	}
	rel, err := repoPath(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pattern, err)
	}
	abs := absPath(rel)
	if _, err := path.Match(abs, ""); err != nil {
		return nil, fmt.Errorf("%s: %w", pattern, err)
	}
	var out []string
	for p := range f.nodes {
		if ok, _ := path.Match(abs, absPath(p)); ok {
			out = append(out, absPath(p))
		}
	}
	slices.Sort(out)
	return out, nil
}

// ReadFile returns the content of a file.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	rel, n, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	return f.content(name, rel, n)
}

// Walk walks the tree at root in lexical order, as filepath.Walk does: root
// itself is resolved, symbolic links below it are reported, not followed.
func (f *treeFS) Walk(root string, walkFn filepath.WalkFunc) error {
	rel, n, err := f.resolve(root)
	if err == nil && n == nil {
		err = fmt.Errorf("%s: %w", root, fs.ErrNotExist)
	}
	if err != nil {
		return walkFn(root, nil, err)
	}
	err = f.walk(filepath.Clean(root), rel, n, walkFn)
	if errors.Is(err, filepath.SkipDir) || errors.Is(err, filepath.SkipAll) {
		return nil
	}
	return err
}

func (f *treeFS) walk(name, rel string, n *node, walkFn filepath.WalkFunc) error {
	info, err := f.stat(rel, n)
	if err != nil {
		return walkFn(name, nil, err)
	}
	if err := walkFn(name, info, nil); err != nil || !n.isDir() {
		return err
	}
	for _, c := range n.children {
		crel := path.Join(rel, c)
		cn := f.nodes[crel]
		err := f.walk(path.Join(name, c), crel, cn, walkFn)
		switch {
		case err == nil:
		case errors.Is(err, filepath.SkipDir) && cn.isDir():
			// Skip that directory, go on with its siblings.
		case errors.Is(err, filepath.SkipDir):
			return nil // SkipDir on a file skips the rest of its directory
		default:
			return err
		}
	}
	return nil
}

// stat describes the entry at rel without following it.
func (f *treeFS) stat(rel string, n *node) (fs.FileInfo, error) {
	info := fileInfo{name: path.Base(absPath(rel)), mode: modeOf(n)}
	if n.isRegular() || n.isLink() {
		file, err := f.tree.TreeEntryFile(&object.TreeEntry{Name: path.Base(rel), Mode: n.mode, Hash: n.hash})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		info.size = file.Size
	}
	return info, nil
}

func modeOf(n *node) fs.FileMode {
	switch n.mode {
	case filemode.Dir:
		return fs.ModeDir | 0o555
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Executable:
		return 0o555
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0o444
}

// treeFile is an open file of the tree filesystem; r is nil for a directory.
type treeFile struct {
	name string
	info fileInfo
	r    *bytes.Reader
}

// Read reads the file's content.
func (t *treeFile) Read(p []byte) (int, error) {
	if t.r == nil {
		return 0, fmt.Errorf("%s: is a directory", t.name)
	}
	return t.r.Read(p)
}

// Write fails: the filesystem is read-only.
func (t *treeFile) Write([]byte) (int, error) { return 0, readOnly(t.name) }

// Close releases nothing; the content is in memory.
func (t *treeFile) Close() error { return nil }

// Stat describes the file.
func (t *treeFile) Stat() (os.FileInfo, error) { return t.info, nil }

// fileInfo is an fs.FileInfo for a tree entry; git stores no times.
type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i fileInfo) Sys() any           { return nil }
