package render

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// fsTree is the repository the filesystem tests read.
var fsTree = files{
	"README.md":               "hello\n",
	"base/deploy.yaml":        "kind: Deployment\n",
	"base/sub/x.yaml":         "x: 1\n",
	"envs/staging/app.yaml":   "kind: ConfigMap\n",
	"envs/staging/base":       "-> ../../base",          // a directory link inside the repo
	"envs/staging/alias.yaml": "-> app.yaml",            // a file link inside the repo
	"envs/staging/up.yaml":    "-> ../../README.md",     // inside the repo, outside the dir
	"envs/staging/out.yaml":   "-> ../../../etc/passwd", // leaves the repo
	"envs/staging/abs.yaml":   "-> /etc/passwd",         // absolute: leaves the repo
	"envs/staging/loop1":      "-> loop2",
	"envs/staging/loop2":      "-> loop1",
	"envs/staging/dangling":   "-> nothing.yaml",
}

func TestTreeFSSymlinkModes(t *testing.T) {
	// The helper really stores symbolic links as git symlinks (mode 120000).
	tree := commitFiles(t, fsTree)
	e, err := tree.FindEntry("envs/staging/out.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != filemode.Symlink {
		t.Fatalf("mode of envs/staging/out.yaml = %v, want symlink", e.Mode)
	}
}

func TestTreeFSRead(t *testing.T) {
	f := NewTreeFS(commitFiles(t, fsTree))
	tests := []struct {
		name, path, want string
	}{
		{"relative", "envs/staging/app.yaml", "kind: ConfigMap\n"},
		{"absolute", "/repo/envs/staging/app.yaml", "kind: ConfigMap\n"},
		{"dot-dot inside", "/repo/envs/staging/../../README.md", "hello\n"},
		{"file link", "envs/staging/alias.yaml", "kind: ConfigMap\n"},
		{"link up, inside the repo", "envs/staging/up.yaml", "hello\n"},
		{"through a directory link", "envs/staging/base/sub/x.yaml", "x: 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := f.ReadFile(tt.path)
			if err != nil {
				t.Fatalf("ReadFile(%q): %v", tt.path, err)
			}
			if string(b) != tt.want {
				t.Errorf("ReadFile(%q) = %q, want %q", tt.path, b, tt.want)
			}
			file, err := f.Open(tt.path)
			if err != nil {
				t.Fatalf("Open(%q): %v", tt.path, err)
			}
			b, err = io.ReadAll(file)
			if err != nil || string(b) != tt.want {
				t.Errorf("Open(%q) read %q, %v; want %q", tt.path, b, err, tt.want)
			}
			if fi, err := file.Stat(); err != nil || fi.Size() != int64(len(tt.want)) || fi.IsDir() {
				t.Errorf("Open(%q).Stat() = %v, %v", tt.path, fi, err)
			}
			if !f.Exists(tt.path) || f.IsDir(tt.path) {
				t.Errorf("Exists/IsDir(%q) = %v/%v, want true/false", tt.path, f.Exists(tt.path), f.IsDir(tt.path))
			}
		})
	}
}

func TestTreeFSRefusesEscapes(t *testing.T) {
	f := NewTreeFS(commitFiles(t, fsTree))
	tests := []struct {
		name, path, wantInErr string
	}{
		{"dot-dot", "../../../etc/passwd", "../../../etc/passwd"},
		{"dot-dot from a dir", "envs/staging/../../../etc/passwd", "envs/staging/../../../etc/passwd"},
		{"absolute", "/etc/passwd", "/etc/passwd"},
		{"absolute past the root", "/repo/../etc/passwd", "/repo/../etc/passwd"},
		{"symlink out", "envs/staging/out.yaml", "symlink envs/staging/out.yaml -> ../../../etc/passwd"},
		{"absolute symlink", "envs/staging/abs.yaml", "symlink envs/staging/abs.yaml -> /etc/passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(method string, err error) {
				t.Helper()
				if !errors.Is(err, errEscape) {
					t.Fatalf("%s(%q) error = %v, want %v", method, tt.path, err, errEscape)
				}
				if !strings.Contains(err.Error(), tt.wantInErr) || !strings.Contains(err.Error(), "escapes the repository") {
					t.Errorf("%s(%q) error %q does not name %q and say it escapes the repository", method, tt.path, err, tt.wantInErr)
				}
			}
			_, err := f.ReadFile(tt.path)
			check("ReadFile", err)
			_, err = f.Open(tt.path)
			check("Open", err)
			_, _, err = f.CleanedAbs(tt.path)
			check("CleanedAbs", err)
			_, err = f.ReadDir(tt.path)
			check("ReadDir", err)
			if f.Exists(tt.path) || f.IsDir(tt.path) {
				t.Errorf("Exists/IsDir(%q) true for a path out of the repository", tt.path)
			}
		})
	}
	if _, err := f.Glob("/etc/*"); !errors.Is(err, errEscape) {
		t.Errorf("Glob(/etc/*) error = %v, want %v", err, errEscape)
	}
}

func TestTreeFSMissingAndLoops(t *testing.T) {
	f := NewTreeFS(commitFiles(t, fsTree))
	for _, p := range []string{"nope.yaml", "envs/staging/dangling", "README.md/x", "envs/staging/app.yaml/x"} {
		if _, err := f.ReadFile(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%q) error = %v, want not exist", p, err)
		}
		if f.Exists(p) {
			t.Errorf("Exists(%q) = true", p)
		}
	}
	_, err := f.ReadFile("envs/staging/loop1")
	if err == nil || !strings.Contains(err.Error(), "too many levels of symbolic links") {
		t.Errorf("ReadFile(loop) error = %v, want too many levels of symbolic links", err)
	}
	if _, err := f.ReadFile("base"); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("ReadFile(dir) error = %v, want is a directory", err)
	}
}

func TestTreeFSDirectories(t *testing.T) {
	f := NewTreeFS(commitFiles(t, fsTree))
	names, err := f.ReadDir("base")
	if err != nil || !slices.Equal(names, []string{"deploy.yaml", "sub"}) {
		t.Errorf("ReadDir(base) = %v, %v", names, err)
	}
	if names, err := f.ReadDir("envs/staging/base"); err != nil || !slices.Equal(names, []string{"deploy.yaml", "sub"}) {
		t.Errorf("ReadDir through a link = %v, %v", names, err)
	}
	if !f.IsDir("/repo") || !f.IsDir(".") || !f.IsDir("envs/staging/base") {
		t.Errorf("IsDir of the root or a linked directory is false")
	}

	tests := []struct {
		path, wantDir, wantFile string
	}{
		{"envs/staging", "/repo/envs/staging", ""},
		{"/repo/envs/staging/app.yaml", "/repo/envs/staging", "app.yaml"},
		{"envs/staging/base", "/repo/base", ""},                        // links resolved, as on disk
		{"envs/staging/base/deploy.yaml", "/repo/base", "deploy.yaml"}, // so kustomize's root checks see the target
		{".", "/repo", ""},
	}
	for _, tt := range tests {
		d, file, err := f.CleanedAbs(tt.path)
		if err != nil || string(d) != tt.wantDir || file != tt.wantFile {
			t.Errorf("CleanedAbs(%q) = %q, %q, %v; want %q, %q", tt.path, d, file, err, tt.wantDir, tt.wantFile)
		}
	}

	var walked []string
	err = f.Walk("/repo/base", func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		walked = append(walked, p)
		return nil
	})
	if want := []string{"/repo/base", "/repo/base/deploy.yaml", "/repo/base/sub", "/repo/base/sub/x.yaml"}; err != nil || !slices.Equal(walked, want) {
		t.Errorf("Walk = %v, %v; want %v", walked, err, want)
	}

	got, err := f.Glob("envs/staging/*.yaml")
	want := []string{"/repo/envs/staging/abs.yaml", "/repo/envs/staging/alias.yaml", "/repo/envs/staging/app.yaml", "/repo/envs/staging/out.yaml", "/repo/envs/staging/up.yaml"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Glob = %v, %v; want %v", got, err, want)
	}
}

func TestTreeFSIsReadOnly(t *testing.T) {
	f := NewTreeFS(commitFiles(t, fsTree))
	tests := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { _, err := f.Create("new.yaml"); return err }},
		{"Mkdir", func() error { return f.Mkdir("newdir") }},
		{"MkdirAll", func() error { return f.MkdirAll("a/b/c") }},
		{"RemoveAll", func() error { return f.RemoveAll("base") }},
		{"WriteFile", func() error { return f.WriteFile("README.md", []byte("changed")) }},
		{"WriteFile new", func() error { return f.WriteFile("new.yaml", []byte("x")) }},
		{"File.Write", func() error {
			file, err := f.Open("README.md")
			if err != nil {
				return err
			}
			_, err = file.Write([]byte("changed"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, errReadOnly) {
				t.Errorf("error = %v, want %v", err, errReadOnly)
			}
		})
	}
	if b, err := f.ReadFile("README.md"); err != nil || string(b) != "hello\n" {
		t.Errorf("README.md after writes = %q, %v", b, err)
	}
	if !f.Exists("base/deploy.yaml") || f.Exists("new.yaml") {
		t.Errorf("the tree changed after write calls")
	}
}

func TestTreeFSUnreadableTree(t *testing.T) {
	// A tree whose subtree is missing from storage (a damaged or partial
	// clone) must fail, not be served in part.
	r := newTestRepo(t)
	r.write(fsTree)
	tree := r.commit()
	sub, err := tree.FindEntry("envs")
	if err != nil {
		t.Fatal(err)
	}
	delete(r.storage.Objects, sub.Hash)
	delete(r.storage.Trees, sub.Hash)

	f := NewTreeFS(tree)
	if f.Exists("README.md") {
		t.Errorf("Exists on an unreadable tree = true")
	}
	_, err = f.ReadFile("README.md")
	if err == nil || !strings.Contains(err.Error(), "envs: subtree") {
		t.Errorf("ReadFile on an unreadable tree: error = %v, want one naming the missing subtree", err)
	}
	if err := f.MkdirAll("x"); err == nil {
		t.Errorf("MkdirAll on an unreadable tree succeeded")
	}
}
