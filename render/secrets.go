package render

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Lengths of decrypted values that the leak check and the redaction of
// error messages look for. Shorter values ("true", a port) are everywhere
// in manifests: matching them would fail renderings for nothing.
const (
	// minLeakExact: a string of a rendered object equal to a secret value
	// at least this long is a leak.
	minLeakExact = 8
	// minLeakContained: a string containing a secret value at least this
	// long is a leak (a password inside a connection string).
	minLeakContained = 16
	// minRedact: values at least this long are cut out of error messages.
	minRedact = 4
)

// errLeak marks a rendering where a decrypted value ended up outside a
// Secret's data or stringData.
var errLeak = errors.New("a decrypted value appears outside a Secret's data and stringData")

// decryptor decrypts the files one build reads, each once, and keeps what
// it decrypted to check the rendering against.
type decryptor struct {
	keys   *Keys
	files  map[string][]byte // repository path → decrypted content
	secret []secretForm      // the forms to look for in the rendering
	redact []string          // every decrypted value's forms, longest first
	err    error             // the first decryption error
}

// secretForm is one form (as written, base64-encoded, or base64-decoded)
// of a secret value, with where it came from.
type secretForm struct {
	form   string
	origin string // "envs/staging/db.enc.yaml data.password"
}

func newDecryptor(keys *Keys) *decryptor {
	return &decryptor{keys: keys, files: map[string][]byte{}}
}

// open returns the content of the file at the repository path rel,
// decrypted when it is encrypted with SOPS.
func (d *decryptor) open(rel string, data []byte) ([]byte, error) {
	if plain, ok := d.files[rel]; ok {
		return plain, nil
	}
	plain, values, err := decryptFile(rel, data, d.keys)
	if err != nil {
		if d.err == nil {
			d.err = err
		}
		return nil, err
	}
	if values != nil {
		d.files[rel] = plain
		d.remember(rel, values)
	}
	return plain, nil
}

// remember keeps the forms of a file's decrypted values.
func (d *decryptor) remember(rel string, values []decryptedValue) {
	for _, v := range values {
		origin := rel
		if v.path != "" {
			origin += " " + v.path
		}
		for _, f := range forms(v.value) {
			if len(f) >= minRedact {
				d.redact = append(d.redact, f)
			}
			if v.secret && len(f) >= minLeakExact {
				d.secret = append(d.secret, secretForm{form: f, origin: origin})
			}
		}
	}
	sort.SliceStable(d.redact, func(i, j int) bool { return len(d.redact[i]) > len(d.redact[j]) })
}

// forms are the ways a value shows in manifests: as it is, base64-encoded
// (a Secret's data, a secretGenerator's output), and, when it is base64
// of text, decoded.
func forms(v string) []string {
	out := []string{v, base64.StdEncoding.EncodeToString([]byte(v))}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(b) > 0 && utf8.Valid(b) {
		out = append(out, string(b))
	}
	return out
}

// check fails the rendering when a secret value appears anywhere in objs
// but in the data and stringData of a Secret: in a ConfigMap a kustomize
// replacement copied it into, in an annotation, in a name. The message
// names the object, the field and the file the value came from, never the
// value.
func (d *decryptor) check(objs []*unstructured.Unstructured) error {
	if len(d.secret) == 0 {
		return nil
	}
	var errs []error
	for _, o := range objs {
		isSecret := o.GetAPIVersion() == "v1" && o.GetKind() == "Secret"
		subject := fmt.Sprintf("%s %s", o.GetKind(), objectName(o))
		walkObject(o.Object, nil, func(p []string, s string) {
			if isSecret && len(p) >= 2 && (p[0] == "data" || p[0] == "stringData") {
				return
			}
			if origin, ok := d.find(s); ok {
				errs = append(errs, fmt.Errorf("%s at %s: %w (decrypted from %s)", subject, strings.Join(p, "."), errLeak, origin))
			}
		})
	}
	return errors.Join(errs...)
}

// find reports where s came from when it is or holds a secret value.
func (d *decryptor) find(s string) (string, bool) {
	for _, f := range d.secret {
		if s == f.form || (len(f.form) >= minLeakContained && strings.Contains(s, f.form)) {
			return f.origin, true
		}
	}
	return "", false
}

// walkObject calls fn with every string of an object, map keys included
// (with the path of their map), and its path, in key order: the errors it
// leads to read the same at every render.
func walkObject(v any, p []string, fn func(p []string, s string)) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			fn(p, k)
			walkObject(v[k], append(p[:len(p):len(p)], k), fn)
		}
	case []any:
		for i, e := range v {
			walkObject(e, append(p[:len(p):len(p)], fmt.Sprint(i)), fn)
		}
	case string:
		fn(p, v)
	}
}

// objectName is namespace/name, or name.
func objectName(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return ns + "/" + o.GetName()
	}
	return o.GetName()
}

// redactErr returns err with every decrypted value cut out of its
// message: kustomize and the YAML parser quote content in their errors.
// An error that quotes nothing is returned as it is, wrapping intact.
func (d *decryptor) redactErr(err error) error {
	if err == nil || len(d.redact) == 0 {
		return err
	}
	msg := err.Error()
	out := msg
	for _, f := range d.redact {
		out = strings.ReplaceAll(out, f, "[redacted]")
	}
	if out == msg {
		return err
	}
	return errors.New(out)
}
