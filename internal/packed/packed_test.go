package packed

import (
	"bytes"
	"fmt"
	"testing"
)

// TestPack: a packed list gives back each item as it was, whole or one at
// a time, in a fraction of the size of objects that repeat each other.
func TestPack(t *testing.T) {
	var items [][]byte
	raw := 0
	for i := range 1000 {
		it := fmt.Appendf(nil, `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%04d","namespace":"shop","labels":{"app.kubernetes.io/managed-by":"ferry"}},"data":{"version":"v1"}}`, i)
		if i == 500 {
			it = nil // an empty item
		}
		items = append(items, it)
		raw += len(it)
	}
	l, err := Pack(items)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != len(items) || l.Size() > raw/4 {
		t.Fatalf("%d items in %d bytes, want %d in at most a quarter of %d", l.Len(), l.Size(), len(items), raw)
	}
	all, err := l.Unpack()
	if err != nil {
		t.Fatal(err)
	}
	for i := range items {
		if !bytes.Equal(all[i], items[i]) {
			t.Fatalf("item %d unpacked as %q, want %q", i, all[i], items[i])
		}
	}
	for _, i := range []int{0, 1, 499, 500, 501, 999} {
		it, err := l.Item(i)
		if err != nil || !bytes.Equal(it, items[i]) {
			t.Fatalf("Item(%d) = %q, %v; want %q", i, it, err, items[i])
		}
	}
	if _, err := l.Item(1000); err == nil {
		t.Fatal("Item past the end did not fail")
	}
	// An item of the caller's own: appending to it leaves the next alone.
	all[0] = append(all[0], "x"...)
	if !bytes.Equal(all[1], items[1]) {
		t.Fatal("appending to one unpacked item changed the next")
	}
	var empty List
	if got, err := empty.Unpack(); err != nil || len(got) != 0 || empty.Len() != 0 {
		t.Fatalf("empty list unpacked as %d items, %v", len(got), err)
	}
}
