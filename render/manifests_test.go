package render

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const cmDoc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"

func TestParseManifests(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // ids of the objects
	}{
		{"empty file", "", nil},
		{"only separators and comments", "# x\n---\n---\n# y\n...\n", nil},
		{"null document", "null\n---\n~\n", nil},
		{"one object", cmDoc, []string{"ConfigMap /a"}},
		{"leading separator, empty documents between", "---\n" + cmDoc + "---\n---\n" + strings.Replace(cmDoc, "name: a", "name: b", 1), []string{"ConfigMap /a", "ConfigMap /b"}},
		{"JSON", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"n"}}`, []string{"Secret n/s"}},
		{"v1 List flattened", `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: Secret, metadata: {name: b}}
`, []string{"ConfigMap /a", "Secret /b"}},
		{"typed list flattened", "apiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n", []string{"ConfigMap /a"}},
		{"kind ending in List without items is an object", "apiVersion: example.com/v1\nkind: AllowList\nmetadata: {name: x}\nspec: {}\n", []string{"AllowList /x"}},
		{"anchors and merge keys", `apiVersion: v1
kind: ConfigMap
metadata: {name: a, labels: &l {app: x}}
data:
  <<: *l
  more: "1"
`, []string{"ConfigMap /a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := parseManifests("f.yaml", []byte(tt.in))
			if err != nil {
				t.Fatalf("parseManifests: %v", err)
			}
			if got := ids(objs); !equal(got, tt.want) {
				t.Errorf("objects = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseManifestsValues(t *testing.T) {
	objs, err := parseManifests("f.yaml", []byte(`apiVersion: v1
kind: ConfigMap
metadata: {name: a}
spec:
  int: 3
  big: 123456789012345678901
  float: 1.5
  when: 2024-01-02T03:04:05Z
  yes: yes
  1: one
  true: t
  ~: nothing
`))
	if err != nil {
		t.Fatal(err)
	}
	spec := objs[0].Object["spec"].(map[string]any)
	want := map[string]any{
		"int": int64(3), "big": float64(123456789012345678901), "float": 1.5,
		"when": "2024-01-02T03:04:05Z", "yes": "yes", "1": "one", "true": "t", "null": "nothing",
	}
	for k, v := range want {
		if spec[k] != v {
			t.Errorf("spec[%q] = %#v, want %#v", k, spec[k], v)
		}
	}
	_ = objs[0].DeepCopy() // panics on values that are not JSON types
}

func TestParseManifestsErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"syntax", "apiVersion: v1\nkind: ConfigMap\nmetadata: name: a\n", "f.yaml: yaml: line 3: mapping values are not allowed in this context"},
		{"syntax in a later document", cmDoc + "---\n" + cmDoc + "data: a: b\n", "f.yaml: yaml: line 8: mapping values are not allowed"},
		{"duplicate key", cmDoc + "---\napiVersion: v1\nkind: A\nkind: B\n", "f.yaml: yaml: unmarshal errors:\n  line 7: mapping key \"kind\" already defined at line 6"},
		{"scalar document", cmDoc + "---\njust text\n", "f.yaml: line 5: a manifest must be a mapping, not a scalar"},
		{"list document", "- a\n- b\n", "f.yaml: line 1: a manifest must be a mapping, not a list"},
		{"no apiVersion", "kind: ConfigMap\n", "f.yaml: line 1: object has no apiVersion"},
		{"kind not a string", "apiVersion: v1\nkind: [a]\n", "f.yaml: line 1: object has no kind"},
		{"list item not an object", "apiVersion: v1\nkind: List\nitems: [3]\n", "f.yaml: line 1: List items[0]: not an object"},
		{"list item without kind", "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1}]\n", "f.yaml: line 1: List items[0]: object has no kind"},
		{"NaN", cmDoc + "data: {x: .nan}\n", "f.yaml: line 1: data: x: number NaN has no JSON form"},
		{"complex key", cmDoc + "? [a]\n: b\n", "f.yaml: line 1: yaml: invalid map key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseManifests("f.yaml", []byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// FuzzParseManifests checks that the plain-directory parser never panics,
// and that what it accepts is well-formed: JSON-typed objects with an
// apiVersion and kind, which read back from their JSON to the same digest.
func FuzzParseManifests(f *testing.F) {
	for _, s := range []string{
		"", "---\n", cmDoc, cmDoc + "---\n" + cmDoc,
		"apiVersion: v1\nkind: List\nitems:\n- " + `{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}` + "\n",
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"data":{"k":"dg=="}}`,
		"apiVersion: v1\nkind: A\nx: &a {b: [1, 2.5, true, null, 2024-01-02]}\ny: *a\nz: {<<: *a}\n",
		"apiVersion: v1\nkind: A\n1: 2\n~: 3\n? [a]\n: b\n",
		"a: [\n", "- a\n", "!!binary aGVsbG8=\n", "apiVersion: v1\nkind: A\nx: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := parseManifests("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), "panic:") {
				t.Fatalf("parser panicked: %v", err)
			}
			return
		}
		var again []*unstructured.Unstructured
		for _, o := range objs {
			if o.GetAPIVersion() == "" || o.GetKind() == "" {
				t.Fatalf("object without apiVersion or kind: %v", o.Object)
			}
			_ = o.DeepCopy() // panics on non-JSON types
			j, err := json.Marshal(o.Object)
			if err != nil {
				t.Fatalf("object has no JSON form: %v", err)
			}
			back, err := parseManifests("fuzz.json", j)
			if err != nil {
				t.Fatalf("own JSON %s does not parse back: %v", j, err)
			}
			again = append(again, back...)
		}
		d1, err := digest(objs, nil)
		if err != nil {
			t.Fatalf("digest: %v", err)
		}
		d2, err := digest(again, nil)
		if err != nil || d1 != d2 {
			t.Fatalf("digest after a JSON round trip = %s, %v; want %s", d2, err, d1)
		}
	})
}
