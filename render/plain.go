package render

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// errNoManifests marks a plain directory without a single YAML or JSON file:
// most likely a wrong path, and rendering it as "no objects" would have
// everything pruned.
var errNoManifests = errors.New("no kustomization and no YAML or JSON files")

// manifestFile is one file of a plain directory: name is its path as seen
// under the directory, rel the path its content is at once symbolic links
// are followed.
type manifestFile struct{ name, rel string }

// plain renders a directory without a kustomization: every .yaml, .yml and
// .json file in it and below, in path order, each a stream of documents.
// Every broken file is reported, not only the first.
// dir is the directory as asked for, rel where it is once symbolic links are
// followed.
// names[i] is the file objs[i] came from.
func plain(f *treeFS, dir, rel string) (objs []*unstructured.Unstructured, names []string, err error) {
	files, err := f.manifestFiles(dir, rel)
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("%s: %w", displayDir(dir), errNoManifests)
	}
	var errs []error
	for _, mf := range files {
		data, err := f.content(mf.name, mf.rel, f.nodes[mf.rel])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		more, err := parseManifests(mf.name, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := f.budget.objects(len(objs) + len(more)); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", mf.name, err)
		}
		objs = append(objs, more...)
		for range more {
			names = append(names, mf.name)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return objs, names, nil
}

// isManifestName reports whether a file name has a YAML or JSON extension
// and is not SOPS's configuration (.sops.yaml, its creation rules), which
// sits beside the manifests it encrypts.
func isManifestName(name string) bool {
	if base := path.Base(name); base == ".sops.yaml" || base == ".sops.yml" {
		return false
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// manifestFiles lists the manifest files in dir (resolved: rel) and below,
// sorted by path.
// Symbolic links are followed inside the repository; one that leaves it, or
// a loop of linked directories, is an error. A dangling link with no
// manifest extension is not a manifest and is passed over.
func (f *treeFS) manifestFiles(dir, rel string) ([]manifestFile, error) {
	var files []manifestFile
	onStack := map[string]bool{} // resolved directories being walked
	// Each directory is walked once: links that fan out to the same
	// directories again and again would otherwise multiply the files
	// without bound (TestRenderRefusesSymlinkFanOut).
	walked := map[string]string{} // resolved directory → name it was walked as
	var walk func(name, rel string) error
	walk = func(name, rel string) error {
		if err := f.budget.live(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if first, ok := walked[rel]; ok {
			return fmt.Errorf("%s: %w: directory %s is already rendered as %s; each directory is rendered once", name, ErrLimit, displayDir(rel), first)
		}
		walked[rel] = name
		onStack[rel] = true
		defer delete(onStack, rel)
		for _, c := range f.nodes[rel].children {
			cname := path.Join(name, c)
			crel, n, err := f.resolveRel(path.Join(rel, c))
			if err != nil {
				return fmt.Errorf("%s: %w", cname, err)
			}
			switch {
			case n == nil && isManifestName(c):
				return fmt.Errorf("%s: symlink target %s: %w", cname, crel, errMissing)
			case n == nil:
			case n.isDir() && onStack[crel]:
				return fmt.Errorf("%s: symlink loop back to %s", cname, displayDir(crel))
			case n.isDir():
				if err := walk(cname, crel); err != nil {
					return err
				}
			case n.isRegular() && isManifestName(c):
				files = append(files, manifestFile{name: cname, rel: crel})
			}
		}
		return nil
	}
	if err := walk(dir, rel); err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b manifestFile) int { return strings.Compare(a.name, b.name) })
	return files, nil
}

// displayDir names a repository-relative directory in messages; the root is ".".
func displayDir(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
