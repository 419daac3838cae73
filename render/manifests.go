package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// parseManifests reads the Kubernetes objects of one file: a stream of YAML
// documents (JSON being YAML). Empty documents are skipped and List kinds
// (any kind ending in "List" with an items list, "v1/List" included) are
// flattened into their items. Every object must have an apiVersion and a
// kind. YAML is read as kustomize reads it (YAML 1.2: "yes" is a string);
// timestamps stay the strings they are written as.
//
// Errors name the file and, where the YAML parser gives one, the line,
// counted from the start of the file: "envs/dev/app.yaml: yaml: line 3: ...".
// The line is the parser's: exact for errors in a token, while for some
// structural errors it is where the enclosing mapping starts.
func parseManifests(name string, data []byte) (objs []*unstructured.Unstructured, err error) {
	// The file is not trusted; a panic in the YAML parser must fail this
	// file, not the process.
	defer func() {
		if p := recover(); p != nil {
			objs, err = nil, fmt.Errorf("%s: yaml: panic: %v", name, p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(doc.Content) == 0 {
			continue
		}
		top := doc.Content[0]
		if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
			continue // an empty document
		}
		if top.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: line %d: a manifest must be a mapping, not a %s", name, top.Line, kindName(top))
		}
		timestampsAsStrings(top)
		var v any
		if err := top.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, lineErr(top.Line, err))
		}
		jv, err := jsonValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, top.Line, err)
		}
		m, ok := jv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: line %d: a manifest must be a mapping", name, top.Line)
		}
		more, err := objectsFrom(m)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, top.Line, err)
		}
		objs = append(objs, more...)
	}
}

// lineErr adds the document's line to a decoding error that does not carry
// one already.
func lineErr(line int, err error) error {
	if strings.Contains(err.Error(), "line ") {
		return err
	}
	return fmt.Errorf("line %d: %w", line, err)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// timestampsAsStrings retags unquoted timestamps as strings, so that they keep
// their text instead of becoming time values, as kustomize keeps them
// (TestParseManifestsValues).
func timestampsAsStrings(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		timestampsAsStrings(c)
	}
}

// jsonValue converts a decoded YAML value to the types of JSON objects in
// unstructured.Unstructured: map[string]any, []any, string, int64, float64,
// bool, nil.
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, string, bool, int64:
		return v, nil
	case int:
		return int64(v), nil
	case uint64:
		if v > math.MaxInt64 {
			return float64(v), nil
		}
		return int64(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("number %v has no JSON form", v)
		}
		return v, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			jv, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = jv
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			jv, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = jv
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, err := keyString(k)
			if err != nil {
				return nil, err
			}
			jv, err := jsonValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ks, err)
			}
			out[ks] = jv
		}
		return out, nil
	}
	return nil, fmt.Errorf("value %v of type %T has no JSON form", v, v)
}

// keyString turns a scalar mapping key that is not a string (1, true, null)
// into the string JSON needs.
func keyString(k any) (string, error) {
	switch k := k.(type) {
	case nil:
		return "null", nil
	case string:
		return k, nil
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(k), nil
	}
	return "", fmt.Errorf("mapping key %v of type %T is not a scalar", k, k)
}

// objectsFrom turns one decoded document into objects, flattening lists.
func objectsFrom(m map[string]any) ([]*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{Object: m}
	if err := checkTypeMeta(u); err != nil {
		return nil, err
	}
	items, isList := m["items"].([]any)
	if !isList || !strings.HasSuffix(u.GetKind(), "List") {
		return []*unstructured.Unstructured{u}, nil
	}
	var objs []*unstructured.Unstructured
	for i, it := range items {
		im, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s items[%d]: not an object", u.GetKind(), i)
		}
		more, err := objectsFrom(im)
		if err != nil {
			return nil, fmt.Errorf("%s items[%d]: %w", u.GetKind(), i, err)
		}
		objs = append(objs, more...)
	}
	return objs, nil
}

// checkTypeMeta refuses an object without a string apiVersion and kind.
func checkTypeMeta(u *unstructured.Unstructured) error {
	for _, f := range []string{"apiVersion", "kind"} {
		if s, ok := u.Object[f].(string); !ok || s == "" {
			return fmt.Errorf("object has no %s", f)
		}
	}
	return nil
}

// objectFromJSON decodes one JSON object, with integers as int64.
func objectFromJSON(j []byte) (*unstructured.Unstructured, error) {
	var m map[string]any
	if err := utiljson.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	if err := checkTypeMeta(u); err != nil {
		return nil, err
	}
	return u, nil
}
