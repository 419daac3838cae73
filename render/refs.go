package render

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// kustomizationFileNames are the names kustomize looks for in a directory.
var kustomizationFileNames = konfig.RecognizedKustomizationFileNames()

var (
	// errRemote marks a kustomization entry that names something outside the
	// repository by URL.
	errRemote = errors.New("remote bases are disabled")
	// errMissing marks a kustomization entry that names nothing in the tree.
	errMissing = errors.New("does not exist in the repository")
	// errHelm marks a kustomization that inflates Helm charts.
	errHelm = errors.New("helm charts are disabled")
)

// scpUser is the "user@" prefix that makes kustomize read an entry as an
// scp-style git address (git@host:org/repo).
var scpUser = regexp.MustCompile(`^[a-z][a-z0-9-]*@`)

// looksRemote reports whether kustomize could take entry for a remote base
// (which it fetches by running `git`) or a remote file (fetched over HTTP).
// It is a superset of kustomize's own rules: any scheme, an scp-style user,
// or a github.com address, with or without the "git::" prefix. It is checked
// before the tree is, because kustomize also clones an address that happens
// to exist as a local directory (say "github.com/org/repo"; pinned by
// TestRenderRefusesRemoteBases and TestRenderRunsNoGitAndNoNetwork).
func looksRemote(entry string) bool {
	s := strings.ToLower(strings.TrimSpace(entry))
	s = strings.TrimPrefix(s, "git::")
	return strings.Contains(s, "://") || scpUser.MatchString(s) ||
		strings.HasPrefix(s, "github.com/") || strings.HasPrefix(s, "github.com:")
}

// isInline reports whether a patch, generator, transformer or validator
// entry is written inline (a YAML object) rather than naming a file.
func isInline(entry string) bool {
	if strings.Contains(entry, "\n") {
		return true
	}
	var m map[string]any
	return yaml.Unmarshal([]byte(entry), &m) == nil && m != nil
}

// checkRefs walks the kustomizations reachable from dir, a directory of the
// tree that holds a kustomization file, and refuses every entry that would
// make kustomize read outside the repository.
//
// Kustomize takes any resource it cannot find locally for a remote base and
// runs `git clone`, and fetches http(s) entries over the network; it offers
// no switch to turn that off. So before building, every entry that names a
// file or directory (resources, bases, components, crds, patches,
// replacements, configurations, openapi, generator files and env files,
// generators, transformers, validators) must be a path that exists in the
// tree and stays inside it. Errors name the kustomization file and the entry.
//
// It also counts the builds kustomize would run: a directory included
// through several paths is built once per path, so a few levels of
// directories that each include the next level twice make an exponential
// rendering. More than maxBuilds is refused (TestRenderRefusesKustomizeFanOut).
func checkRefs(f *treeFS, dir string) error {
	c := &refChecker{fs: f, seen: map[string]bool{}, includes: map[string][]string{}}
	if err := c.kustomization(dir); err != nil {
		return err
	}
	if n := c.builds(dir, map[string]int64{}); n > maxBuilds {
		return fmt.Errorf("%s: %w: its kustomizations include each other through more than %d paths; include each base once", displayDir(dir), ErrLimit, maxBuilds)
	}
	return nil
}

// maxBuilds bounds the kustomizations one rendering builds, counted once
// per path that includes them.
const maxBuilds = 1000

type refChecker struct {
	fs       *treeFS
	seen     map[string]bool     // directories already checked
	includes map[string][]string // directory → kustomization directories it includes
}

// builds returns how many kustomizations building dir builds, saturating
// past maxBuilds.
func (c *refChecker) builds(dir string, memo map[string]int64) int64 {
	if n, ok := memo[dir]; ok {
		return n
	}
	memo[dir] = 0 // a cycle is kustomize's to report
	n := int64(1)
	for _, d := range c.includes[dir] {
		n = min(n+c.builds(d, memo), maxBuilds+1)
	}
	memo[dir] = n
	return n
}

// kustomization checks the kustomization in dir, if it has one, and those it
// reaches. A directory without one is left to kustomize, which reports it.
func (c *refChecker) kustomization(dir string) error {
	if c.seen[dir] {
		return nil
	}
	c.seen[dir] = true
	file, err := c.fs.kustomizationFile(dir)
	if err != nil || file == "" {
		return err
	}
	rel, n, err := c.fs.resolveRel(file)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	data, err := c.fs.readRel(file, rel, n)
	if err != nil {
		return err
	}
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	k.FixKustomization() // folds bases into resources, envSource into envSources

	var errs []error
	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, errHelm))
	}
	for _, r := range refsOf(&k) {
		err := c.entry(dir, r.entry, r.base)
		if r.base && errors.Is(err, errMissing) {
			err = fmt.Errorf("%w, and %w", err, errRemote)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s entry %q: %w", file, r.field, r.entry, err))
		}
	}
	return errors.Join(errs...)
}

// ref is one entry of a kustomization that names a file or directory.
type ref struct {
	field string // where it is, for messages: "resources", `configMapGenerator "app"`
	entry string
	base  bool // kustomize would fetch it as a remote base when not found locally
}

// refsOf lists the entries of k that name files or directories. Inline
// patches, generators, transformers and validators name none.
func refsOf(k *types.Kustomization) []ref {
	var refs []ref
	add := func(field string, base bool, entries ...string) {
		for _, e := range entries {
			refs = append(refs, ref{field: field, entry: e, base: base})
		}
	}
	add("resources", true, k.Resources...) // bases were folded in by FixKustomization
	add("components", true, k.Components...)
	add("crds", false, k.Crds...)
	add("configurations", false, k.Configurations...)
	if p, ok := k.OpenAPI["path"]; ok {
		add("openapi", false, p)
	}
	for _, p := range slices.Concat(k.Patches, k.PatchesJson6902) {
		if p.Path != "" {
			add("patches", false, p.Path)
		}
	}
	for _, p := range k.PatchesStrategicMerge {
		if !isInline(string(p)) {
			add("patchesStrategicMerge", false, string(p))
		}
	}
	for _, r := range k.Replacements {
		if r.Path != "" {
			add("replacements", false, r.Path)
		}
	}
	for _, e := range k.Generators {
		if !isInline(e) {
			add("generators", true, e)
		}
	}
	for _, e := range k.Transformers {
		if !isInline(e) {
			add("transformers", true, e)
		}
	}
	for _, e := range k.Validators {
		if !isInline(e) {
			add("validators", true, e)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		add(fmt.Sprintf("configMapGenerator %q", g.Name), false, generatorFiles(g.GeneratorArgs)...)
	}
	for _, g := range k.SecretGenerator {
		add(fmt.Sprintf("secretGenerator %q", g.Name), false, generatorFiles(g.GeneratorArgs)...)
	}
	return refs
}

// generatorFiles lists the files and env files of one generator. File
// sources are "[key=]path"; a malformed one is refused by kustomize before
// it reads anything.
func generatorFiles(g types.GeneratorArgs) []string {
	var out []string
	for _, src := range g.FileSources {
		p := src
		if k, v, ok := strings.Cut(src, "="); ok {
			if k == "" || v == "" || strings.Contains(v, "=") {
				continue
			}
			p = v
		}
		out = append(out, p)
	}
	return append(out, g.EnvSources...)
}

// entry checks that e, relative to dir, is a path inside the repository that
// exists, and walks the kustomization of a directory it names.
func (c *refChecker) entry(dir, e string, base bool) error {
	switch {
	case looksRemote(e):
		return errRemote
	case path.IsAbs(e):
		return errEscape
	}
	p := path.Join(dir, e)
	if escapes(p) {
		return errEscape
	}
	if p == "." {
		p = ""
	}
	rel, n, err := c.fs.resolveRel(p)
	if err != nil {
		return err
	}
	if n == nil {
		return errMissing
	}
	if n.isDir() {
		if base {
			c.includes[dir] = append(c.includes[dir], rel)
		}
		return c.kustomization(rel)
	}
	return nil
}
