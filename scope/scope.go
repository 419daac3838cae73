// Package scope decides what an environment's commit may write: the
// namespaces and cluster-scoped kinds of its scope, and no object of another
// environment. It also writes the RBAC that lets the API server enforce the
// same boundary for the environment's ServiceAccount.
package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"ferry.dev/ferry/internal/crd"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// OwnerLabel names the environment an object belongs to; it is the label
// ferry's apply writes.
const OwnerLabel = "ferry.dev/environment"

// ErrOutOfScope marks a rendering that holds objects outside the
// environment's scope: a verdict on the commit, never retried.
var ErrOutOfScope = errors.New("out of scope")

// Scope is what one environment may write.
type Scope struct {
	// Environment names the environment, for messages and the owner label.
	Environment string
	// Namespaces are names or globs (* any run of characters, ? one) of
	// the namespaces its namespaced objects may be in.
	Namespaces []string
	// ClusterKinds are the cluster-scoped kinds it may write. A Namespace
	// must itself match Namespaces.
	ClusterKinds []string
	// ClusterAdmin lets it write every namespace and kind.
	ClusterAdmin bool
	// DefaultNamespace is given to namespaced objects that name none.
	DefaultNamespace string
}

// NamespacedFunc tells whether a kind is namespaced, from the API server's
// discovery (a RESTMapper). An unknown kind is an error for which
// meta.IsNoMatchError holds.
type NamespacedFunc func(schema.GroupVersionKind) (bool, error)

// Violation is one object outside the scope.
type Violation struct {
	// Subject names the object: Kind/name or Kind/namespace/name.
	Subject string
	// File is the repository path of the file it came from; may be empty.
	File string
	// Reason says what is wrong, ending with the rule, such as "is
	// cluster-scoped; staging may create only Namespace (scope.clusterKinds)".
	Reason string
}

// String returns "Subject (File) Reason".
func (v Violation) String() string {
	if v.File == "" {
		return v.Subject + " " + v.Reason
	}
	return v.Subject + " (" + v.File + ") " + v.Reason
}

// maxListed bounds the violations an error message lists.
const maxListed = 20

// Error lists the objects of a rendering that are outside the scope. It
// matches [ErrOutOfScope] with errors.Is.
type Error struct {
	Environment string
	Violations  []Violation
}

// Error lists the violations, one a line, at most 20 of them.
func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Violations) == 1 {
		return e.Violations[0].String()
	}
	fmt.Fprintf(&b, "%d objects are outside %s's scope:", len(e.Violations), e.Environment)
	for i, v := range e.Violations {
		if i == maxListed {
			fmt.Fprintf(&b, "\n… and %d more", len(e.Violations)-maxListed)
			break
		}
		b.WriteString("\n" + v.String())
	}
	return b.String()
}

// Is matches ErrOutOfScope.
func (e *Error) Is(target error) bool { return target == ErrOutOfScope }

// Check returns an [*Error] naming every object of objs outside s, or nil.
// files[i], when there, is the file objs[i] came from. A kind the API
// server does not know is looked up among the CRDs of objs; one that is
// nowhere is a violation too. Other errors of namespaced (the API server
// unreachable) are returned as they are: they say nothing of the commit.
func Check(s Scope, objs []*unstructured.Unstructured, files []string, namespaced NamespacedFunc) error {
	var out []Violation
	for i, o := range objs {
		file := ""
		if i < len(files) {
			file = files[i]
		}
		ns, reason, err := s.check(o, objs, namespaced)
		if err != nil {
			return fmt.Errorf("%s scope check: %s: %w", s.Environment, subject(o, o.GetNamespace()), err)
		}
		if reason != "" {
			out = append(out, Violation{Subject: subject(o, ns), File: file, Reason: reason})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return &Error{Environment: s.Environment, Violations: out}
}

// check returns why o is outside s, or "", and the namespace o is applied
// in ("" when cluster-scoped or unknown).
func (s Scope) check(o *unstructured.Unstructured, set []*unstructured.Unstructured, namespaced NamespacedFunc) (ns, reason string, err error) {
	ns = o.GetNamespace()
	if owner, ok := o.GetLabels()[OwnerLabel]; ok && owner != s.Environment {
		return ns, fmt.Sprintf("carries %s=%s; %s may not write another environment's objects (remove the label)", OwnerLabel, owner, s.Environment), nil
	}
	if s.ClusterAdmin {
		return ns, "", nil
	}
	gvk := o.GroupVersionKind()
	isNamespaced, err := namespaced(gvk)
	if meta.IsNoMatchError(err) {
		var found bool
		isNamespaced, found = crd.Namespaced(gvk.GroupKind(), set)
		if !found {
			return ns, fmt.Sprintf("is of kind %s, which the API server does not know, so %s's scope cannot be checked (install its CRD first, or in the same commit)", gvk.GroupKind(), s.Environment), nil
		}
	} else if err != nil {
		return ns, "", err
	}
	if isNamespaced {
		if ns == "" {
			ns = s.DefaultNamespace
		}
		if !s.hasNamespace(ns) {
			return ns, fmt.Sprintf("is in namespace %s; %s may write only %s (scope.namespaces)", ns, s.Environment, s.namespaceList()), nil
		}
		return ns, "", nil
	}
	if !slices.Contains(s.ClusterKinds, gvk.Kind) {
		only := "no cluster-scoped object"
		if len(s.ClusterKinds) > 0 {
			only = "only " + strings.Join(s.ClusterKinds, ", ")
		}
		return "", fmt.Sprintf("is cluster-scoped; %s may create %s (scope.clusterKinds)", s.Environment, only), nil
	}
	if gvk.Group == "" && gvk.Kind == "Namespace" && !s.hasNamespace(o.GetName()) {
		return "", fmt.Sprintf("is a namespace outside %s's scope; it may create only %s (scope.namespaces)", s.Environment, s.namespaceList()), nil
	}
	return "", "", nil
}

func (s Scope) hasNamespace(ns string) bool {
	return slices.ContainsFunc(s.Namespaces, func(g string) bool { return Match(g, ns) })
}

func (s Scope) namespaceList() string {
	if len(s.Namespaces) == 0 {
		return "no namespace"
	}
	return strings.Join(s.Namespaces, ", ")
}

// subject names o as Kind/name, or Kind/namespace/name when ns is set.
func subject(o *unstructured.Unstructured, ns string) string {
	if ns == "" {
		return o.GetKind() + "/" + o.GetName()
	}
	return o.GetKind() + "/" + ns + "/" + o.GetName()
}

// Match reports whether name matches glob g: * stands for any run of
// characters, ? for one, everything else for itself.
func Match(g, name string) bool {
	// Iterative wildcard matching with one backtrack point: linear in
	// practice, and at most len(g)*len(name) steps.
	gi, ni := 0, 0
	star, mark := -1, 0
	for ni < len(name) {
		switch {
		case gi < len(g) && (g[gi] == '?' || g[gi] == name[ni]):
			gi++
			ni++
		case gi < len(g) && g[gi] == '*':
			star, mark = gi, ni
			gi++
		case star >= 0:
			gi = star + 1
			mark++
			ni = mark
		default:
			return false
		}
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}
