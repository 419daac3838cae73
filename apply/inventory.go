package apply

import (
	"fmt"
	"slices"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Entry is one object of an environment's inventory: its identity
// (namespace_name_group_kind) and the API version it was applied with.
type Entry struct {
	ID      string `json:"id"`
	Version string `json:"v"`
}

// Inventory is the set of objects ferry applied for an environment, sorted by ID.
type Inventory []Entry

// InventoryOf lists the objects of a change set that ferry owns: every
// entry except those it skipped (ReconcileAnnotation=disabled).
func InventoryOf(cs *ssa.ChangeSet) Inventory {
	var inv Inventory
	for _, e := range cs.Entries {
		if e.Action == ssa.SkippedAction {
			continue
		}
		inv = append(inv, Entry{ID: e.ObjMetadata.String(), Version: e.GroupVersion})
	}
	slices.SortFunc(inv, func(a, b Entry) int { return cmpString(a.ID, b.ID) })
	return slices.CompactFunc(inv, func(a, b Entry) bool { return a.ID == b.ID })
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stale returns the entries of inv that newer no longer holds: the objects
// to prune when newer was applied successfully.
func (inv Inventory) Stale(newer Inventory) Inventory {
	keep := make(map[string]bool, len(newer))
	for _, e := range newer {
		keep[e.ID] = true
	}
	var stale Inventory
	for _, e := range inv {
		if !keep[e.ID] {
			stale = append(stale, e)
		}
	}
	return stale
}

// Metadata returns the object identity of the entry.
func (e Entry) Metadata() (object.ObjMetadata, error) {
	m, err := object.ParseObjMetadata(e.ID)
	if err != nil {
		return m, fmt.Errorf("inventory entry %q: %w", e.ID, err)
	}
	return m, nil
}

// Object returns a stub of the entry's object (apiVersion, kind, namespace,
// name), enough to get or delete it.
func (e Entry) Object() (*unstructured.Unstructured, error) {
	m, err := e.Metadata()
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(m.GroupKind.WithVersion(e.Version))
	u.SetNamespace(m.Namespace)
	u.SetName(m.Name)
	return u, nil
}

// ObjMetadataSet returns the identities of the inventory's objects.
func (inv Inventory) ObjMetadataSet() (object.ObjMetadataSet, error) {
	set := make(object.ObjMetadataSet, 0, len(inv))
	for _, e := range inv {
		m, err := e.Metadata()
		if err != nil {
			return nil, err
		}
		set = append(set, m)
	}
	return set, nil
}

// Changes lists the subjects of a change set's entries by action, leaving
// out the unchanged ones: what logs and tests show of an apply.
func Changes(cs *ssa.ChangeSet) map[string][]string {
	out := map[string][]string{}
	for _, e := range cs.Entries {
		if e.Action != ssa.UnchangedAction {
			out[string(e.Action)] = append(out[string(e.Action)], e.Subject)
		}
	}
	return out
}
