package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults of an environment's scope and limits.
const (
	// DefaultMaxFileBytes is the largest file a rendering reads: 5 MiB.
	DefaultMaxFileBytes = 5 << 20
	// DefaultMaxObjects is the most objects one rendering may hold.
	DefaultMaxObjects = 20000
	// DefaultMaxRenderBytes is the largest rendering, in bytes of its
	// objects' JSON: 50 MiB.
	DefaultMaxRenderBytes = 50 << 20
	// DefaultRenderTimeout bounds one rendering.
	DefaultRenderTimeout = 30 * time.Second
	// EnvServiceAccountPrefix starts the name of the ServiceAccount an
	// environment's requests impersonate in the cluster by default:
	// ferry-env-<name>, in ferry's own namespace.
	EnvServiceAccountPrefix = "ferry-env-"
)

// DefaultClusterKinds are the cluster-scoped kinds an environment may write
// when its scope names none: its Namespaces.
var DefaultClusterKinds = []string{"Namespace"}

// Scope is what an environment's commits may write. Every rendered object
// is checked against it before anything is dry-run or applied.
type Scope struct {
	// Namespaces are the namespaces its namespaced objects may be in:
	// names, or globs where * stands for any run of characters and ? for
	// one, such as staging-*. Default: the environment's namespace.
	Namespaces []string `yaml:"namespaces"`
	// ClusterKinds are the cluster-scoped kinds it may write, such as
	// Namespace or ClusterRole; default [DefaultClusterKinds]. A Namespace
	// must itself be one of Namespaces.
	ClusterKinds []string `yaml:"clusterKinds"`
	// ClusterAdmin lets the environment write every namespace and every
	// kind, ferry's own namespace included. It is meant for the one
	// environment that manages ferry's install; its ServiceAccount is bound
	// to cluster-admin.
	ClusterAdmin bool `yaml:"clusterAdmin"`
}

// Limits bound one rendering of an environment, so that a hostile commit
// fails its own revision instead of exhausting ferry.
type Limits struct {
	// MaxFileBytes is the largest file read; default [DefaultMaxFileBytes].
	MaxFileBytes int `yaml:"maxFileBytes"`
	// MaxObjects is the most objects a rendering may hold; default
	// [DefaultMaxObjects].
	MaxObjects int `yaml:"maxObjects"`
	// MaxRenderBytes bounds the size of a rendering; default
	// [DefaultMaxRenderBytes].
	MaxRenderBytes int `yaml:"maxRenderBytes"`
	// RenderTimeout bounds the time of one rendering; default
	// [DefaultRenderTimeout].
	RenderTimeout time.Duration `yaml:"renderTimeout"`
}

func (l *Limits) setDefaults() {
	l.MaxFileBytes = DefaultMaxFileBytes
	l.MaxObjects = DefaultMaxObjects
	l.MaxRenderBytes = DefaultMaxRenderBytes
	l.RenderTimeout = DefaultRenderTimeout
}

func (s *Scope) setDefaults() {
	s.ClusterKinds = slices.Clone(DefaultClusterKinds)
}

// ServiceAccountName returns the ServiceAccount, in ferry's namespace, that
// the environment's requests impersonate: ServiceAccount when set;
// otherwise ferry-env-<name> in a cluster, and none (requests go as the
// kubeconfig's user) outside one.
func (e *Environment) ServiceAccountName(inCluster bool) string {
	switch {
	case e.ServiceAccount != "":
		return e.ServiceAccount
	case inCluster:
		return EnvServiceAccountPrefix + e.Name
	}
	return ""
}

// sameCluster reports whether two environments are applied to the same
// cluster, as far as the configuration can tell.
func sameCluster(a, b Cluster) bool {
	return a.Kubeconfig == b.Kubeconfig && a.Context == b.Context
}

// validateScope checks one environment's scope and limits.
func (e *Environment) validateScope(at string, p *problems) {
	for i, g := range e.Scope.Namespaces {
		if err := CheckNamespaceGlob(g); err != nil {
			p.add(fmt.Sprintf("%s.scope.namespaces[%d]", at, i), "%v", err)
		}
	}
	for i, k := range e.Scope.ClusterKinds {
		if msgs := validation.IsDNS1035Label(strings.ToLower(k)); k == "" || len(msgs) > 0 || k[0] < 'A' || k[0] > 'Z' {
			p.add(fmt.Sprintf("%s.scope.clusterKinds[%d]", at, i), "%q is not a kind: write it as the API spells it, such as Namespace or ClusterRole", k)
		}
	}
	if e.ServiceAccount != "" {
		if msgs := validation.IsDNS1123Subdomain(e.ServiceAccount); len(msgs) > 0 {
			p.add(at+".serviceAccount", "%q is not a ServiceAccount name: %s", e.ServiceAccount, strings.Join(msgs, "; "))
		}
	}
	l := &e.Limits
	for _, f := range []struct {
		name string
		v    int
		def  int
	}{{"maxFileBytes", l.MaxFileBytes, DefaultMaxFileBytes}, {"maxObjects", l.MaxObjects, DefaultMaxObjects}, {"maxRenderBytes", l.MaxRenderBytes, DefaultMaxRenderBytes}} {
		if f.v <= 0 {
			p.add(at+".limits."+f.name, "must be positive, such as %d", f.def)
		}
	}
	if l.RenderTimeout <= 0 {
		p.add(at+".limits.renderTimeout", "must be positive, such as %s", DefaultRenderTimeout)
	}
}

// validateScopes checks the scopes of all environments against each other
// and against ferry's own namespace: two environments in one cluster never
// share a namespace or a cluster-scoped kind, and only a clusterAdmin
// environment may write ferry's namespace.
func (c *Config) validateScopes(p *problems) {
	admin := -1
	for i := range c.Environments {
		e := &c.Environments[i]
		at := fmt.Sprintf("environments[%d].scope", i)
		if e.Scope.ClusterAdmin {
			if admin >= 0 && sameCluster(e.Cluster, c.Environments[admin].Cluster) {
				p.add(at+".clusterAdmin", "environments[%d] (%q) already manages this cluster; only the environment of ferry's install may be clusterAdmin", admin, c.Environments[admin].Name)
			} else if admin < 0 {
				admin = i
			}
			continue
		}
		if c.Namespace != "" {
			for j, g := range e.Scope.Namespaces {
				if CheckNamespaceGlob(g) == nil && globMatch(g, c.Namespace) {
					p.add(fmt.Sprintf("%s.namespaces[%d]", at, j), "%q includes ferry's own namespace %q; only the environment of ferry's install (scope.clusterAdmin: true) may write it", g, c.Namespace)
				}
			}
		}
		for k := range i {
			o := &c.Environments[k]
			// A duplicate name is reported as such, not as an overlap.
			if o.Scope.ClusterAdmin || o.Name == e.Name || !sameCluster(e.Cluster, o.Cluster) {
				continue
			}
			for j, g := range e.Scope.Namespaces {
				for _, h := range o.Scope.Namespaces {
					if CheckNamespaceGlob(g) == nil && CheckNamespaceGlob(h) == nil && GlobsOverlap(g, h) {
						p.add(fmt.Sprintf("%s.namespaces[%d]", at, j), "%q overlaps %q of environments[%d] (%q) in the same cluster; an environment's namespaces must be its own", g, h, k, o.Name)
					}
				}
			}
			for j, kind := range e.Scope.ClusterKinds {
				if kind != "Namespace" && slices.Contains(o.Scope.ClusterKinds, kind) {
					p.add(fmt.Sprintf("%s.clusterKinds[%d]", at, j), "%s is also in the scope of environments[%d] (%q) in the same cluster; a cluster-scoped kind belongs to one environment", kind, k, o.Name)
				}
			}
		}
	}
}

// CheckNamespaceGlob accepts a namespace name or a glob of one: lowercase
// letters, digits and '-', with * for any run of them and ? for one.
func CheckNamespaceGlob(g string) error {
	if g == "" {
		return fmt.Errorf("empty: write a namespace, such as staging, or a glob, such as staging-*")
	}
	if !strings.ContainsAny(g, "*?") {
		if msgs := validation.IsDNS1123Label(g); len(msgs) > 0 {
			return fmt.Errorf("%q is not a namespace name: %s", g, strings.Join(msgs, "; "))
		}
		return nil
	}
	if len(g) > validation.DNS1123LabelMaxLength {
		return fmt.Errorf("%q is longer than a namespace name can be (%d)", g, validation.DNS1123LabelMaxLength)
	}
	for _, r := range g {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '*' || r == '?') {
			return fmt.Errorf("%q is not a namespace glob: use lowercase letters, digits, '-', and * or ? as wildcards", g)
		}
	}
	return nil
}

// globMatch reports whether namespace name matches glob g, where * is any
// run of characters and ? any one.
func globMatch(g, name string) bool {
	return GlobsOverlap(g, name)
}

// GlobsOverlap reports whether some namespace name matches both globs a and
// b (names being globs without wildcards). It walks both patterns at once,
// remembering the pairs of positions tried, so it takes at most
// len(a)*len(b) steps.
func GlobsOverlap(a, b string) bool {
	seen := make(map[[2]int]bool)
	var from func(i, j int) bool
	from = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := seen[key]; ok {
			return v
		}
		seen[key] = false
		var ok bool
		switch {
		case i == len(a) && j == len(b):
			ok = true
		case i < len(a) && a[i] == '*':
			// The star matches nothing, or one more character of b's.
			ok = from(i+1, j) || (j < len(b) && from(i, j+1))
		case j < len(b) && b[j] == '*':
			ok = from(i, j+1) || (i < len(a) && from(i+1, j))
		case i == len(a) || j == len(b):
			ok = false
		default:
			ok = (a[i] == b[j] || a[i] == '?' || b[j] == '?') && from(i+1, j+1)
		}
		seen[key] = ok
		return ok
	}
	return from(0, 0)
}
