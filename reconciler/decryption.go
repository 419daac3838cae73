package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/go-git/go-git/v5/plumbing/object"

	"ferry.dev/ferry/config"
	"ferry.dev/ferry/render"
)

// keyLoader reads an environment's SOPS decryption keys: its key files and
// the .agekey and .asc keys of its Secret in ferry's namespace, read with
// ferry's own client (the Secret is ferry's, not the environment's). It
// reads them at every render, so a rotated key takes effect without a
// restart; the render cache keys on the keys' public side, so unchanged
// keys still hit it.
type keyLoader struct {
	decryption *config.Decryption // nil: no keys
	client     client.Reader
	namespace  string
}

// load returns the keys, or nil when the environment has no decryption
// configured. An error names the file or the Secret and its key, never
// key material.
func (l keyLoader) load(ctx context.Context) (*render.Keys, error) {
	d := l.decryption
	if d == nil {
		return nil, nil
	}
	var files []render.KeyFile
	for _, name := range d.KeyFiles {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("decryption key file: %w", err)
		}
		files = append(files, render.KeyFile{Name: name, Data: data})
	}
	if d.SecretRef != nil {
		more, err := l.secretKeys(ctx, d.SecretRef.Name)
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return render.ParseKeys(files...)
}

// secretKeys reads the keys of the decryption Secret name, in key order.
func (l keyLoader) secretKeys(ctx context.Context, name string) ([]render.KeyFile, error) {
	subject := fmt.Sprintf("decryption Secret %s/%s", l.namespace, name)
	s := &corev1.Secret{}
	if err := l.client.Get(ctx, client.ObjectKey{Namespace: l.namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("%s: %w", subject, err)
	}
	var files []render.KeyFile
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		switch strings.ToLower(path.Ext(k)) {
		case render.AgeKeySuffix, render.PGPKeySuffix:
		default:
			return nil, fmt.Errorf("%s: key %q is neither *%s (age identities) nor *%s (an armored OpenPGP private key)", subject, k, render.AgeKeySuffix, render.PGPKeySuffix)
		}
		// The name ends with the key, whose suffix says what it holds.
		files = append(files, render.KeyFile{Name: subject + ": " + k, Data: s.Data[k]})
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: holds no key; add one named identity%s or key%s", subject, render.AgeKeySuffix, render.PGPKeySuffix)
	}
	return files, nil
}

// errKeys marks a failure to read an environment's decryption keys: a
// problem of ferry's configuration or its Secret, or an unreachable API
// server, not of the commit being rendered, so it is no verdict on it.
var errKeys = errors.New("decryption keys")

// renderTree renders the environment's path of tree, decrypting its
// SOPS-encrypted files with the environment's keys.
func (r *Reconciler) renderTree(ctx context.Context, tree *object.Tree) (*render.Result, error) {
	keys, err := r.keys.load(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errKeys, err)
	}
	return r.renderer.RenderWith(ctx, tree, r.env.Path, render.Input{Limits: r.env.Limits, Keys: keys})
}
