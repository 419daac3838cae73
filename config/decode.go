package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The file is decoded here rather than by viper.UnmarshalExact because viper
// lowercases every key (a typo in onFailure would be reported as
// "onfailur") and loses the file's structure. Walking the YAML nodes keeps
// the file's spelling in every path, matches keys exactly, and collects every
// problem instead of stopping at the first. TestParseProblems pins the paths.

var (
	durationType = reflect.TypeFor[time.Duration]()
	namesType    = reflect.TypeFor[Names]()
)

// decodeFile reads data, one YAML document, into a Config with defaults.
// A syntax error is returned as err; problems with the document's content
// are returned as FieldErrors in problems.
func decodeFile(data []byte) (c *Config, problems []error, err error) {
	c = new(Config)
	c.setDefaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil, nil // an empty file: validation says what is missing
		}
		return nil, nil, fmt.Errorf("not YAML: %w", err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, fmt.Errorf("not YAML: %w", err)
		}
		return nil, nil, errors.New("holds more than one YAML document; put the whole configuration in one")
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	d := &decoder{}
	d.decode("", root, reflect.ValueOf(c).Elem())
	c.setDerivedDefaults()
	return c, d.problems, nil
}

// decoder decodes YAML nodes into configuration values strictly, recording
// each problem with its field path and going on.
type decoder struct {
	problems []error
}

func (d *decoder) fail(path, format string, args ...any) {
	d.problems = append(d.problems, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// decode reads n into v. A null node leaves v as it is, so an empty key
// keeps its default.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	n = deref(n)
	if n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		return
	}
	if v.Type() == durationType {
		d.duration(path, n, v)
		return
	}
	if v.Type() == namesType && n.Kind != yaml.SequenceNode {
		if n.Kind != yaml.ScalarNode {
			d.fail(path, "must be a name or a list of names, found %s", describe(n))
			return
		}
		v.Set(reflect.ValueOf(Names{n.Value}))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(newValue(v.Type().Elem()))
		}
		d.decode(path, n, v.Elem())
	case reflect.Struct:
		d.mapping(path, n, v)
	case reflect.Slice:
		d.sequence(path, n, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(path, "must be a string, found %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(path, "must be true or false, found %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.fail(path, "must be a whole number, found %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			d.fail(path, "must be a number, found %s", describe(n))
			return
		}
		v.SetFloat(f)
	default:
		// A field of a type added to Config without teaching the decoder;
		// FuzzParse and TestParseDefaults reach every field.
		panic(fmt.Sprintf("config: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) duration(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "must be a duration such as 30s, 5m or 1h30m, found %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(path, "invalid duration %q: write a number with a unit, such as 30s, 5m or 1h30m", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) sequence(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, "must be a list, found %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		elem := newValue(v.Type().Elem()).Elem()
		d.decode(fmt.Sprintf("%s[%d]", path, i), item, elem)
		s = reflect.Append(s, elem)
	}
	v.Set(s)
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "must be a mapping of fields, found %s", describe(n))
		return
	}
	names := fieldNames(v.Type())
	for _, p := range d.pairs(path, n) {
		i := fieldIndex(names, p.key)
		if i < 0 {
			d.fail(joinPath(path, p.key), "unknown field; %s", suggest(p.key, names))
			continue
		}
		d.decode(joinPath(path, p.key), p.value, v.Field(i))
	}
}

type pair struct {
	key   string
	value *yaml.Node
}

// pairs lists the fields of mapping n with YAML merge keys (<<: *anchor)
// resolved: a mapping's own keys win over merged ones, and an earlier merge
// source over a later one. Each node is expanded once, which bounds the work
// on files built to explode (TestParseMergeCycle).
func (d *decoder) pairs(path string, n *yaml.Node) []pair {
	var out []pair
	taken := map[string]bool{}
	expanded := map[*yaml.Node]bool{}
	var walk func(m *yaml.Node, top bool)
	walk = func(m *yaml.Node, top bool) {
		if expanded[m] {
			return
		}
		expanded[m] = true
		own := map[string]bool{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := deref(m.Content[i]), m.Content[i+1]
			switch {
			case k == nil || k.Kind != yaml.ScalarNode:
				d.fail(path, "has a key that is not a name: %s", describe(k))
				continue
			case k.Value == "<<" && k.ShortTag() == "!!merge":
				merges = append(merges, v)
				continue
			case own[k.Value]:
				if top {
					d.fail(joinPath(path, k.Value), "duplicate field; give it once")
				}
				continue
			}
			own[k.Value] = true
			if !taken[k.Value] {
				taken[k.Value] = true
				out = append(out, pair{key: k.Value, value: v})
			}
		}
		for _, src := range merges {
			src = deref(src)
			switch {
			case src != nil && src.Kind == yaml.MappingNode:
				walk(src, false)
			case src != nil && src.Kind == yaml.SequenceNode:
				for _, s := range src.Content {
					if s = deref(s); s != nil && s.Kind == yaml.MappingNode {
						walk(s, false)
					} else {
						d.fail(path, "<< merges mappings only, found %s", describe(s))
					}
				}
			default:
				d.fail(path, "<< merges mappings only, found %s", describe(src))
			}
		}
	}
	walk(n, true)
	return out
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// newValue returns a pointer to a new t, with t's defaults if it has any.
func newValue(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if dv, ok := p.Interface().(defaulter); ok {
		dv.setDefaults()
	}
	return p
}

// fieldNames lists the YAML names of struct type t's fields, by index.
func fieldNames(t reflect.Type) []string {
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
	}
	return names
}

func fieldIndex(names []string, key string) int {
	for i, name := range names {
		if name == key {
			return i
		}
	}
	return -1
}

// suggest tells how to fix an unknown key: the field it was probably meant
// to be, or the fields there are.
func suggest(key string, names []string) string {
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("did you mean %q? (field names are case-sensitive)", name)
		}
	}
	best, bestDist := "", 3
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), strings.ToLower(name)); dist < bestDist && dist < len(name) {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "known fields: " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b, counting a
// swap of neighbours as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return len(ra) + len(rb) // too far to be a typo; keeps the cost bounded
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// joinPath appends key to path, quoting keys that would make the path
// ambiguous.
func joinPath(path, key string) string {
	if !plainKey.MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a node holds, for "found ..." in reasons.
func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case len([]rune(n.Value)) > 40:
		return strconv.Quote(string([]rune(n.Value)[:40]) + "…")
	default:
		return strconv.Quote(n.Value)
	}
}
