package manifests

import (
	"context"
	"fmt"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"ferry.dev/ferry/render"
)

// renderFiles renders a flat directory through ferry's renderer, which
// reads git trees: the files become a tree in memory first. Going through
// the renderer, not kustomize directly, keeps kustomize's process-wide state
// guarded in one place and gives exactly what ferry renders from the
// committed directory.
func renderFiles(ctx context.Context, files map[string][]byte) ([]*unstructured.Unstructured, error) {
	tree, err := memTree(files)
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	res, err := render.NewRenderer(render.Options{}).Render(ctx, tree, ".")
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	return res.Objects, nil
}

// memTree writes files (flat names) as blobs and one tree into memory.
func memTree(files map[string][]byte) (*object.Tree, error) {
	store := memory.NewStorage()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names) // git orders tree entries by name
	tree := &object.Tree{}
	for _, name := range names {
		blob := store.NewEncodedObject()
		blob.SetType(plumbing.BlobObject)
		w, err := blob.Writer()
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(files[name]); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		hash, err := store.SetEncodedObject(blob)
		if err != nil {
			return nil, err
		}
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: hash})
	}
	enc := store.NewEncodedObject()
	if err := tree.Encode(enc); err != nil {
		return nil, err
	}
	hash, err := store.SetEncodedObject(enc)
	if err != nil {
		return nil, err
	}
	return object.GetTree(store, hash)
}
