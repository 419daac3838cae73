package render

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
)

// kustomizeMu serialises every kustomize build in the process. Kustomize
// keeps mutable package globals: each build sets kyaml's OpenAPI schema (the
// one that says which list fields merge by key) from the kustomization's
// `openapi` field (openapi.SetSchema), and transformers read it back while
// patching. Two builds at once would race on it, and one could patch with the
// other's schema. This is the only place ferry runs kustomize
// (TestRenderConcurrent renders several directories at once).
var kustomizeMu sync.Mutex

// kustomizeOptions are the build options: nothing is loaded from outside the
// kustomization root but bases, no plugins (builtins only), no Helm, and
// kustomize's default output order (its legacy kind order, unless the
// kustomization sets sortOptions).
func kustomizeOptions() *krusty.Options {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig() // Helm stays disabled in it too
	opts.Reorder = krusty.ReorderOptionUnspecified
	opts.AddManagedbyLabel = false
	return opts
}

// kustomize builds the kustomization kfile in dir, a repository-relative
// directory whose references checkRefs has vetted. files[i] is the
// repository path of the file objs[i] came from ("" where kustomize does
// not say).
func kustomize(f *treeFS, dir, kfile string) (objs []*unstructured.Unstructured, files []string, err error) {
	data, err := f.ReadFile(kfile)
	if err != nil {
		return nil, nil, err
	}
	fsys, keep := withOrigins(f, kfile, data)
	kustomizeMu.Lock()
	defer kustomizeMu.Unlock()
	// The repository's content is not trusted; a panic in kustomize on odd
	// input must fail this rendering, not the process.
	defer func() {
		if p := recover(); p != nil {
			objs, files, err = nil, nil, fmt.Errorf("kustomize build: panic: %v", p)
		}
	}()
	m, err := krusty.MakeKustomizer(kustomizeOptions()).Run(fsys, absPath(dir))
	if err != nil && f.budget != nil && f.budget.refused != nil {
		return nil, nil, f.budget.refused // what kustomize failed on, in plain words
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kustomize build: %w", err)
	}
	if err := f.budget.objects(m.Size()); err != nil {
		return nil, nil, fmt.Errorf("kustomize build: %w", err)
	}
	var size int64
	for _, res := range m.Resources() {
		j, err := res.MarshalJSON()
		size += int64(len(j))
		if err == nil {
			err = f.budget.output(size)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("kustomize build: %s: %w", res.CurId(), err)
		}
		u, err := objectFromJSON(j)
		if err != nil {
			return nil, nil, fmt.Errorf("kustomize build: %s: %w", res.CurId(), err)
		}
		objs = append(objs, u)
		files = append(files, originOf(u, dir, keep))
	}
	return objs, files, nil
}
