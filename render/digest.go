package render

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// digest is the sha256 of the normalised rendering, "sha256:<hex>": each
// object as canonical JSON (encoding/json writes map keys sorted), the
// objects sorted by group, kind, namespace and name (then by their JSON, for
// duplicates), one per line. It depends on content only: neither the key
// order of the files nor the order of documents and files changes it.
//
// b, when set, bounds the JSON's total size.
func digest(objs []*unstructured.Unstructured, b *budget) (string, error) {
	type entry struct {
		group, kind, namespace, name string
		doc                          []byte
	}
	entries := make([]entry, 0, len(objs))
	var size int64
	for _, o := range objs {
		doc, err := json.Marshal(o.Object)
		if err != nil {
			return "", fmt.Errorf("digest %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
		size += int64(len(doc))
		if err := b.output(size); err != nil {
			return "", err
		}
		gvk := o.GroupVersionKind()
		entries = append(entries, entry{gvk.Group, gvk.Kind, o.GetNamespace(), o.GetName(), doc})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(
			cmp.Compare(a.group, b.group),
			cmp.Compare(a.kind, b.kind),
			cmp.Compare(a.namespace, b.namespace),
			cmp.Compare(a.name, b.name),
			bytes.Compare(a.doc, b.doc),
		)
	})
	h := sha256.New()
	for _, e := range entries {
		h.Write(e.doc)
		h.Write([]byte{'\n'}) // JSON escapes newlines, so this separates
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
