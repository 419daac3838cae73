package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"gopkg.in/ini.v1"
)

// The formats of SOPS files, as the sops command writes them: where each
// keeps its metadata, in what order its values come (the MAC's order), and
// how it is written out decrypted.

// sopsMaxDepth bounds the nesting of an encrypted file's values.
const sopsMaxDepth = 200

var errSOPSDepth = fmt.Errorf("values nested more than %d deep", sopsMaxDepth)

// readYAMLSOPS reads a YAML file: one or more documents, each a map, the
// metadata under the first document's "sops" key.
func readYAMLSOPS(data []byte) (*sopsFile, bool, error) {
	// SOPS reads the first document as a map first: a file where it is
	// not is no SOPS file.
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&map[string]any{}); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, nil
	}
	var docs []*yaml.Node
	d := yaml.NewDecoder(bytes.NewReader(data))
	for {
		doc := &yaml.Node{}
		err := d.Decode(doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, nil
		}
		docs = append(docs, doc)
	}
	var meta *yaml.Node
	roots := make([]*yaml.Node, len(docs))
	for i, doc := range docs {
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		switch {
		case root.Kind == yaml.MappingNode:
		case root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null":
			continue
		default:
			return nil, false, nil // SOPS reads maps only
		}
		roots[i] = root
		for j := 0; j+1 < len(root.Content); {
			if k := root.Content[j]; k.Kind == yaml.ScalarNode && k.Value == "sops" {
				if i == 0 && meta == nil {
					meta = root.Content[j+1]
				}
				root.Content = append(root.Content[:j], root.Content[j+2:]...)
				continue
			}
			j += 2
		}
	}
	if meta == nil {
		return nil, false, nil
	}
	var m map[string]any
	if err := meta.Decode(&m); err != nil {
		return nil, true, fmt.Errorf("the sops key is not a map: %w", err)
	}
	md, err := metaFrom(m)
	if err != nil {
		return nil, true, err
	}
	f := &sopsFile{meta: md}
	for i, root := range roots {
		if root != nil {
			if err := f.walkYAML(i, root, nil, nil, 0); err != nil {
				return nil, true, err
			}
		}
	}
	f.emit = func() ([]byte, error) {
		var buf bytes.Buffer
		e := yaml.NewEncoder(&buf)
		e.SetIndent(4) // as the sops command writes YAML
		for _, doc := range docs {
			if err := e.Encode(doc); err != nil {
				return nil, err
			}
		}
		if err := e.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	return f, true, nil
}

// walkYAML collects the values of n, in document order, with their keys.
// List items take no key (SOPS authenticates them with their list's keys)
// but show their index in path.
func (f *sopsFile) walkYAML(doc int, n *yaml.Node, keys, path []string, depth int) error {
	if depth > sopsMaxDepth {
		return errSOPSDepth
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil {
			return f.walkYAML(doc, n.Alias, keys, path, depth+1)
		}
	case yaml.MappingNode:
		f.yamlComments(n, keys)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			var key any
			if err := k.Decode(&key); err != nil {
				return err
			}
			s, ok := key.(string)
			if !ok {
				return fmt.Errorf("a key that is a %T, not a string", key)
			}
			f.yamlComments(k, keys)
			if v.Kind == yaml.ScalarNode {
				f.yamlComments(v, keys)
			}
			if err := f.walkYAML(doc, v, append(keys[:len(keys):len(keys)], s), append(path[:len(path):len(path)], s), depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		f.yamlComments(n, keys)
		for i, it := range n.Content {
			f.yamlComments(it, keys)
			if err := f.walkYAML(doc, it, keys, append(path[:len(path):len(path)], strconv.Itoa(i)), depth+1); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return err
		}
		f.leaves = append(f.leaves, &sopsLeaf{doc: doc, path: path, keys: keys, value: v, set: func(p any) {
			var e yaml.Node
			if err := e.Encode(p); err != nil {
				e = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: scalarString(p)}
			}
			n.Kind, n.Tag, n.Value, n.Style, n.Content = e.Kind, e.Tag, e.Value, e.Style, e.Content
		}})
	}
	return nil
}

// yamlComments notes n's comment lines that look encrypted.
func (f *sopsFile) yamlComments(n *yaml.Node, keys []string) {
	for _, c := range []*string{&n.HeadComment, &n.LineComment, &n.FootComment} {
		if !strings.Contains(*c, "ENC[") {
			continue
		}
		lines := strings.Split(*c, "\n")
		for i, line := range lines {
			text := strings.TrimPrefix(strings.TrimSpace(line), "#")
			if !strings.HasPrefix(text, "ENC[") {
				continue
			}
			f.comments = append(f.comments, &sopsComment{keys: keys, text: text, set: func(s string) {
				lines[i] = "#" + s
				*c = strings.Join(lines, "\n")
			}})
		}
	}
}

// jsonMember is one member of a JSON object, in file order.
type jsonMember struct {
	key   string
	value any
}

// jsonObject is a JSON object that keeps its members' order.
type jsonObject struct{ members []jsonMember }

// readJSONSOPS reads a JSON file: an object, the metadata under its "sops"
// key. binary is SOPS's format for any other file: the object's "data" is
// the whole file.
func readJSONSOPS(data []byte, binary bool) (*sopsFile, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := readJSON(dec, 0)
	obj, isObj := root.(*jsonObject)
	if err != nil || !isObj {
		if binary && bytes.Contains(data, []byte(`"sops"`)) {
			return nil, true, errors.New("an encrypted file that is not SOPS's JSON")
		}
		return nil, false, nil
	}
	var meta any
	kept := obj.members[:0]
	for _, m := range obj.members {
		if m.key == "sops" {
			meta = m.value
			continue
		}
		kept = append(kept, m)
	}
	obj.members = kept
	if meta == nil {
		return nil, false, nil
	}
	m, ok := plainJSON(meta).(map[string]any)
	if !ok {
		return nil, true, errors.New("the sops key is not an object")
	}
	md, err := metaFrom(m)
	if err != nil {
		return nil, true, err
	}
	f := &sopsFile{meta: md, binary: binary}
	if err := f.walkJSON(obj, nil, nil, 0); err != nil {
		return nil, true, err
	}
	if binary {
		f.emit = func() ([]byte, error) {
			for _, m := range obj.members {
				if m.key == "data" {
					if s, ok := m.value.(string); ok {
						return []byte(s), nil
					}
				}
			}
			return nil, errors.New("no data")
		}
		return f, true, nil
	}
	f.emit = func() ([]byte, error) {
		var buf bytes.Buffer
		if err := writeJSON(&buf, obj, ""); err != nil {
			return nil, err
		}
		buf.WriteByte('\n')
		return buf.Bytes(), nil
	}
	return f, true, nil
}

// readJSON reads one JSON value, keeping objects' member order.
func readJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > sopsMaxDepth {
		return nil, errSOPSDepth
	}
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		o := &jsonObject{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, ok := k.(string)
			if !ok {
				return nil, errors.New("an object key that is no string")
			}
			v, err := readJSON(dec, depth+1)
			if err != nil {
				return nil, err
			}
			o.members = append(o.members, jsonMember{key: key, value: v})
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := readJSON(dec, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return &a, err
	}
	if n, ok := t.(json.Number); ok {
		// As SOPS reads numbers: an integer if it is one, else a float.
		if i, err := n.Int64(); err == nil {
			return int(i), nil
		}
		return n.Float64()
	}
	return t, nil // string, bool or nil
}

// plainJSON turns a read JSON value into maps and slices.
func plainJSON(v any) any {
	switch v := v.(type) {
	case *jsonObject:
		m := make(map[string]any, len(v.members))
		for _, mb := range v.members {
			m[mb.key] = plainJSON(mb.value)
		}
		return m
	case *[]any:
		out := make([]any, len(*v))
		for i, e := range *v {
			out[i] = plainJSON(e)
		}
		return out
	}
	return v
}

// walkJSON collects the values of v, in file order, with their keys.
func (f *sopsFile) walkJSON(v any, keys, path []string, depth int) error {
	if depth > sopsMaxDepth {
		return errSOPSDepth
	}
	switch v := v.(type) {
	case *jsonObject:
		for i := range v.members {
			m := &v.members[i]
			k, p := append(keys[:len(keys):len(keys)], m.key), append(path[:len(path):len(path)], m.key)
			switch m.value.(type) {
			case *jsonObject, *[]any:
				if err := f.walkJSON(m.value, k, p, depth+1); err != nil {
					return err
				}
			default:
				f.leaves = append(f.leaves, &sopsLeaf{path: p, keys: k, value: m.value, set: func(x any) { m.value = x }})
			}
		}
	case *[]any:
		for i := range *v {
			p := append(path[:len(path):len(path)], strconv.Itoa(i))
			switch e := (*v)[i].(type) {
			case *jsonObject, *[]any:
				if err := f.walkJSON(e, keys, p, depth+1); err != nil {
					return err
				}
			default:
				f.leaves = append(f.leaves, &sopsLeaf{path: p, keys: keys, value: e, set: func(x any) { (*v)[i] = x }})
			}
		}
	}
	return nil
}

// writeJSON writes v indented by four spaces, as the sops command does.
func writeJSON(buf *bytes.Buffer, v any, indent string) error {
	inner := indent + "    "
	switch v := v.(type) {
	case *jsonObject:
		if len(v.members) == 0 {
			buf.WriteString("{}")
			return nil
		}
		buf.WriteString("{\n")
		for i, m := range v.members {
			k, err := json.Marshal(m.key)
			if err != nil {
				return err
			}
			buf.WriteString(inner)
			buf.Write(k)
			buf.WriteString(": ")
			if err := writeJSON(buf, m.value, inner); err != nil {
				return err
			}
			if i < len(v.members)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	case *[]any:
		if len(*v) == 0 {
			buf.WriteString("[]")
			return nil
		}
		buf.WriteString("[\n")
		for i, e := range *v {
			buf.WriteString(inner)
			if err := writeJSON(buf, e, inner); err != nil {
				return err
			}
			if i < len(*v)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	case []byte:
		return writeJSON(buf, string(v), indent)
	case time.Time:
		return writeJSON(buf, v.Format(time.RFC3339Nano), indent)
	case sopsCommentValue:
		return writeJSON(buf, string(v), indent)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// readDotenvSOPS reads a dotenv file: KEY=value lines and # comments, the
// metadata in sops_-prefixed keys, flattened.
func readDotenvSOPS(data []byte) (*sopsFile, bool, error) {
	type line struct {
		comment  bool
		key, val string
	}
	var lines []*line
	flat := map[string]string{}
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if l[0] == '#' {
			lines = append(lines, &line{comment: true, val: string(l[1:])})
			continue
		}
		k, v, ok := bytes.Cut(l, []byte("="))
		if !ok {
			return nil, false, nil // no dotenv file, as SOPS reads one
		}
		val := strings.ReplaceAll(string(v), `\n`, "\n")
		if name, ok := strings.CutPrefix(string(k), "sops_"); ok {
			flat[name] = val
			continue
		}
		lines = append(lines, &line{key: string(k), val: val})
	}
	if len(flat) == 0 {
		return nil, false, nil
	}
	md, err := flatMeta(flat)
	if err != nil {
		return nil, true, err
	}
	f := &sopsFile{meta: md}
	for _, l := range lines {
		if l.comment {
			f.comments = append(f.comments, &sopsComment{text: l.val, set: func(s string) { l.val = s }})
			continue
		}
		f.leaves = append(f.leaves, &sopsLeaf{path: []string{l.key}, keys: []string{l.key}, value: l.val,
			set: func(v any) { l.val = scalarString(v) }})
	}
	f.emit = func() ([]byte, error) {
		var buf bytes.Buffer
		for _, l := range lines {
			if l.comment {
				buf.WriteString("#" + l.val + "\n")
				continue
			}
			buf.WriteString(l.key + "=" + strings.ReplaceAll(l.val, "\n", `\n`) + "\n")
		}
		return buf.Bytes(), nil
	}
	return f, true, nil
}

// readINISOPS reads an INI file: sections of keys, the metadata in the
// "sops" section, flattened.
func readINISOPS(data []byte) (*sopsFile, bool, error) {
	file, err := ini.LoadSources(ini.LoadOptions{AllowNonUniqueSections: true}, data)
	if err != nil {
		return nil, false, nil
	}
	sec, err := file.GetSection("sops")
	if err != nil {
		return nil, false, nil
	}
	flat := map[string]string{}
	for _, k := range sec.Keys() {
		flat[k.Name()] = strings.ReplaceAll(k.Value(), `\n`, "\n")
	}
	md, err := flatMeta(flat)
	if err != nil {
		return nil, true, err
	}
	file.DeleteSection("sops")
	f := &sopsFile{meta: md}
	for _, s := range file.Sections() {
		for _, k := range s.Keys() {
			path := []string{s.Name(), k.Name()}
			f.leaves = append(f.leaves, &sopsLeaf{path: path, keys: path, value: k.Value(),
				set: func(v any) { k.SetValue(scalarString(v)) }})
		}
	}
	f.emit = func() ([]byte, error) {
		var buf bytes.Buffer
		_, err := file.WriteTo(&buf)
		return buf.Bytes(), err
	}
	return f, true, nil
}

// flatMeta reads metadata that dotenv and INI files keep flattened: a
// nested key is written as its path, maps' keys after "__map_" and lists'
// indices after "__list_" (age__list_0__map_recipient).
func flatMeta(flat map[string]string) (sopsMeta, error) {
	root := map[string]any{}
	for k, v := range flat {
		if err := setFlat(root, k, v); err != nil {
			return sopsMeta{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	return metaFrom(listsOf(root).(map[string]any))
}

var flatToken = regexp.MustCompile(`__(map|list)_`)

// setFlat sets the value at a flattened path. Lists are built as maps of
// their indices; listsOf turns them into lists.
func setFlat(root map[string]any, key, value string) error {
	seps := flatToken.FindAllStringSubmatchIndex(key, -1)
	names := []string{}
	start := 0
	kinds := []string{"map"}
	for _, s := range seps {
		names = append(names, key[start:s[0]])
		kinds = append(kinds, key[s[2]:s[3]])
		start = s[1]
	}
	names = append(names, key[start:])
	if len(names) > sopsMaxDepth {
		return errSOPSDepth
	}
	cur := root
	for i, name := range names {
		if kinds[i] == "list" {
			n, err := strconv.Atoi(name)
			if err != nil || n < 0 || n > 1000 {
				return errors.New("a list index that is not one")
			}
			name = "\x00" + strconv.Itoa(n) // a list's entry, not a map's
		}
		if i == len(names)-1 {
			cur[name] = value
			return nil
		}
		next, ok := cur[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[name] = next
		}
		cur = next
	}
	return nil
}

// listsOf turns the maps setFlat built for lists into lists.
func listsOf(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	isList := len(m) > 0
	for k := range m {
		isList = isList && strings.HasPrefix(k, "\x00")
	}
	if !isList {
		for k, e := range m {
			m[k] = listsOf(e)
		}
		return m
	}
	out := make([]any, len(m))
	for i := range out {
		e, ok := m["\x00"+strconv.Itoa(i)]
		if !ok {
			return m // not a list without gaps: left as a map, and refused as one
		}
		out[i] = listsOf(e)
	}
	return out
}

// metaFrom reads SOPS metadata from its map form, with SOPS's weak typing
// (a number or a boolean may be written as a string).
func metaFrom(m map[string]any) (sopsMeta, error) {
	var md sopsMeta
	lm := m["lastmodified"]
	var t time.Time
	switch v := lm.(type) {
	case time.Time:
		t = v
	case string:
		var err error
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			return md, errors.New("lastmodified is no RFC 3339 time")
		}
	default:
		return md, errors.New("no lastmodified")
	}
	md.lastModified = t.Format(time.RFC3339)
	md.mac, _ = m["mac"].(string)
	md.macOnlyEncrypted = weakBool(m["mac_only_encrypted"])
	md.threshold = weakInt(m["shamir_threshold"])
	rules := 0
	for _, r := range []struct {
		key   string
		str   *string
		regex **regexp.Regexp
	}{
		{"unencrypted_suffix", &md.unencryptedSuffix, nil},
		{"encrypted_suffix", &md.encryptedSuffix, nil},
		{"unencrypted_regex", nil, &md.unencryptedRegex},
		{"encrypted_regex", nil, &md.encryptedRegex},
		{"unencrypted_comment_regex", nil, nil},
		{"encrypted_comment_regex", nil, nil},
	} {
		s, _ := m[r.key].(string)
		if s == "" {
			continue
		}
		rules++
		switch {
		case r.str != nil:
			*r.str = s
		case r.regex != nil:
			re, err := regexp.Compile(s)
			if err != nil {
				return md, fmt.Errorf("%s: %w", r.key, err)
			}
			*r.regex = re
		default:
			return md, fmt.Errorf("%s is not supported by ferry: encrypt with encrypted_regex or unencrypted_regex instead", r.key)
		}
	}
	if rules > 1 {
		return md, errors.New("more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex and unencrypted_regex")
	}
	if rules == 0 {
		md.unencryptedSuffix = "_unencrypted" // SOPS's default
	}
	if groups, ok := m["key_groups"].([]any); ok && len(groups) > 0 {
		for _, g := range groups {
			gm, ok := g.(map[string]any)
			if !ok {
				return md, errors.New("a key group that is not a map")
			}
			md.groups = append(md.groups, keysOf(gm))
		}
	} else {
		md.groups = [][]sopsKey{keysOf(m)}
	}
	return md, nil
}

// keysOf reads a key group's master keys: age and OpenPGP keys, and the
// public side of any other kind, to name them.
func keysOf(g map[string]any) []sopsKey {
	var out []sopsKey
	for _, kind := range []struct{ name, id, enc string }{
		{"age", "recipient", "enc"}, {"pgp", "fp", "enc"}, {"kms", "arn", ""}, {"gcp_kms", "resource_id", ""},
		{"azure_kv", "vault_url", ""}, {"hc_vault", "vault_address", ""}, {"hckms", "key_id", ""},
	} {
		list, _ := g[kind.name].([]any)
		for _, e := range list {
			km, _ := e.(map[string]any)
			id, _ := km[kind.id].(string)
			k := sopsKey{kind: kind.name, id: id}
			if kind.enc != "" {
				k.enc, _ = km[kind.enc].(string)
			}
			out = append(out, k)
		}
	}
	return out
}

// weakBool and weakInt read a value SOPS may write as a string.
func weakBool(v any) bool {
	b, _ := strconv.ParseBool(fmt.Sprint(v))
	return b
}

func weakInt(v any) int {
	n, _ := strconv.Atoi(fmt.Sprint(v))
	return n
}
