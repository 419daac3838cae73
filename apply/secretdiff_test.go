package apply

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func secret(data map[string]any, stringData map[string]any) *unstructured.Unstructured {
	o := map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "db", "namespace": "app", "resourceVersion": "7"},
		"type":     "Opaque",
	}
	if data != nil {
		o["data"] = data
	}
	if stringData != nil {
		o["stringData"] = stringData
	}
	return &unstructured.Unstructured{Object: o}
}

// values are the plaintexts of these tests; none may show in a diff, in
// clear or base64.
var values = []string{"old-password-1", "new-password-2", "same-user-3", "gone-token-4", "fresh-key-5"}

func noValues(t *testing.T, diff string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(diff, v) || strings.Contains(diff, b64(v)) {
			t.Errorf("diff shows %q:\n%s", v, diff)
		}
	}
}

func TestUnifiedMasksSecrets(t *testing.T) {
	live := secret(map[string]any{"password": b64("old-password-1"), "user": b64("same-user-3"), "token": b64("gone-token-4")}, nil)
	desired := secret(map[string]any{"password": b64("new-password-2"), "user": b64("same-user-3")}, map[string]any{"key": "fresh-key-5"})

	diff, keys, err := unified(live, desired)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diff:\n%s", diff)
	want := &KeyChanges{Added: []string{"key"}, Changed: []string{"password"}, Removed: []string{"token"}}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %+v, want %+v", keys, want)
	}
	first := strings.SplitN(diff, "\n", 2)[0]
	if first != "# Secret values: 1 key added (key), 1 key changed (password), 1 key removed (token); each value shows as a keyed hash" {
		t.Errorf("first line = %q", first)
	}
	noValues(t, diff)
	// The unchanged key has the same hash on both sides, so it is context;
	// the changed one shows two different hashes.
	var minus, plus []string
	for _, l := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(l, "-  "):
			minus = append(minus, strings.TrimSpace(l[1:]))
		case strings.HasPrefix(l, "+  "):
			plus = append(plus, strings.TrimSpace(l[1:]))
		}
	}
	if !strings.Contains(diff, "\n   user: hash:") {
		t.Errorf("unchanged key user is not context with its hash")
	}
	hashOf := func(lines []string, key string) string {
		for _, l := range lines {
			if h, ok := strings.CutPrefix(l, key+": hash:"); ok {
				return h
			}
		}
		return ""
	}
	if a, b := hashOf(minus, "password"), hashOf(plus, "password"); a == "" || b == "" || a == b || len(a) != 8 {
		t.Errorf("password hashes %q → %q, want two different 8-digit hashes", a, b)
	}
	if hashOf(plus, "key") == "" || hashOf(minus, "token") == "" {
		t.Errorf("added key or removed token not shown with a hash: -%v +%v", minus, plus)
	}
	if strings.Contains(diff, "stringData") {
		t.Error("stringData shown; it is folded into data")
	}

	// Equal values hash equally, different ones differently; the hash is
	// keyed, so it is not a plain SHA-256 prefix of the value.
	if valueHash([]byte("x")) != valueHash([]byte("x")) || valueHash([]byte("x")) == valueHash([]byte("y")) {
		t.Error("valueHash is not a function of the value")
	}
	if valueHash([]byte("")) == "e3b0c442" {
		t.Error("valueHash is not keyed")
	}
}

func TestUnifiedSecretCreatedAndPruned(t *testing.T) {
	s := secret(map[string]any{"password": b64("old-password-1")}, map[string]any{"user": "same-user-3"})
	diff, keys, err := unified(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	if keys.String() != "2 keys added (password, user)" || !strings.HasPrefix(diff, "# Secret values: 2 keys added (password, user);") {
		t.Errorf("created: keys %v, diff:\n%s", keys, diff)
	}
	noValues(t, diff)
	diff, keys, err = unified(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if keys.String() != "2 keys removed (password, user)" {
		t.Errorf("pruned: keys %v, diff:\n%s", keys, diff)
	}
	noValues(t, diff)

	// Only metadata changed: no key changed.
	relabelled := s.DeepCopy()
	relabelled.SetLabels(map[string]string{"tier": "db"})
	diff, keys, err = unified(s, relabelled)
	if err != nil {
		t.Fatal(err)
	}
	if keys.String() != "no key changed" || !strings.Contains(diff, "+    tier: db") {
		t.Errorf("relabelled: keys %v, diff:\n%s", keys, diff)
	}
	noValues(t, diff)
}

func TestUnifiedShowsOtherKindsInFull(t *testing.T) {
	cm := func(v string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": "cfg", "namespace": "app"},
			"data":     map[string]any{"LOG_LEVEL": v},
		}}
	}
	diff, keys, err := unified(cm("info"), cm("debug"))
	if err != nil {
		t.Fatal(err)
	}
	if keys != nil || !strings.Contains(diff, "-  LOG_LEVEL: info") || !strings.Contains(diff, "+  LOG_LEVEL: debug") {
		t.Errorf("keys %v, diff:\n%s", keys, diff)
	}
}
