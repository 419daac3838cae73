package apply

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// KeyChanges are the keys of a Secret whose values a change adds, changes
// or removes, each list sorted. It is all a diff says of a Secret's
// values.
type KeyChanges struct {
	Added, Changed, Removed []string
}

// String is "1 key changed (password)", "2 keys added (a, b), 1 key removed
// (c)", or "no key changed".
func (k KeyChanges) String() string {
	var parts []string
	for _, g := range []struct {
		verb string
		keys []string
	}{{"added", k.Added}, {"changed", k.Changed}, {"removed", k.Removed}} {
		if len(g.keys) == 0 {
			continue
		}
		noun := "key"
		if len(g.keys) > 1 {
			noun = "keys"
		}
		parts = append(parts, fmt.Sprintf("%d %s %s (%s)", len(g.keys), noun, g.verb, strings.Join(g.keys, ", ")))
	}
	if len(parts) == 0 {
		return "no key changed"
	}
	return strings.Join(parts, ", ")
}

// isSecret reports whether o is a core v1 Secret.
func isSecret(o *unstructured.Unstructured) bool {
	return o != nil && o.GetAPIVersion() == "v1" && o.GetKind() == "Secret"
}

// secretValues are a Secret's values by key, decoded: data base64-decoded,
// stringData as written and winning over data, as the API server merges
// them. A data value that is not base64 is kept as written.
func secretValues(o *unstructured.Unstructured) map[string][]byte {
	out := map[string][]byte{}
	if o == nil {
		return out
	}
	data, _, _ := unstructured.NestedMap(o.Object, "data")
	for k, v := range data {
		s := fmt.Sprint(v)
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			out[k] = b
		} else {
			out[k] = []byte(s)
		}
	}
	sd, _, _ := unstructured.NestedMap(o.Object, "stringData")
	for k, v := range sd {
		out[k] = []byte(fmt.Sprint(v))
	}
	return out
}

// secretKeyChanges compares the values of two versions of a Secret (either
// may be nil).
func secretKeyChanges(before, after *unstructured.Unstructured) KeyChanges {
	b, a := secretValues(before), secretValues(after)
	var kc KeyChanges
	for k, v := range a {
		old, ok := b[k]
		switch {
		case !ok:
			kc.Added = append(kc.Added, k)
		case !bytes.Equal(old, v):
			kc.Changed = append(kc.Changed, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			kc.Removed = append(kc.Removed, k)
		}
	}
	slices.Sort(kc.Added)
	slices.Sort(kc.Changed)
	slices.Sort(kc.Removed)
	return kc
}

// maskSecret replaces every value of a Secret (nil is left alone) by
// "hash:" and a short keyed hash of it: equal values show equal hashes
// within one ferry process, so a reviewer sees which value changed, and
// the hash of a guessable password cannot be checked against guesses
// (TestUnifiedMasksSecrets).
func maskSecret(o *unstructured.Unstructured) error {
	if o == nil {
		return nil
	}
	vals := secretValues(o)
	unstructured.RemoveNestedField(o.Object, "stringData")
	if len(vals) == 0 {
		return nil
	}
	masked := make(map[string]any, len(vals))
	for k, v := range vals {
		masked[k] = "hash:" + valueHash(v)
	}
	return unstructured.SetNestedMap(o.Object, masked, "data")
}

// hashKey keys the value hashes: random, made once per process, never
// stored or shown.
var hashKey = sync.OnceValue(func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("apply: no randomness for the Secret value hash key: %v", err))
	}
	return k
})

// valueHash is the first 8 hex digits of HMAC-SHA256(hashKey, v).
func valueHash(v []byte) string {
	m := hmac.New(sha256.New, hashKey())
	m.Write(v)
	return hex.EncodeToString(m.Sum(nil))[:8]
}
