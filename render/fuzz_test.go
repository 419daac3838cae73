package render

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzRender renders a kustomization with one resource file, both fuzzed,
// within small limits: it must neither panic nor run past its limits,
// whatever the input.
func FuzzRender(f *testing.F) {
	for _, seed := range [][2]string{
		{"resources: [app.yaml]\n", cmYAML("app")},
		{"resources: [app.yaml]\nnamePrefix: x-\ncommonLabels: {a: b}\n", cmYAML("app") + "---\n" + cmYAML("two")},
		{"resources: [app.yaml]\npatches: [{patch: '[{\"op\": \"add\", \"path\": \"/data\", \"value\": {}}]', target: {kind: ConfigMap}}]\n", cmYAML("app")},
		{"resources: [app.yaml]\nconfigMapGenerator: [{name: g, literals: [a=b]}]\n", "apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: ConfigMap, metadata: {name: i}}]\n"},
		{"resources: [app.yaml]\n", billionLaughs()},
		{"resources: [app.yaml]\nbuildMetadata: &m [originAnnotations]\nx: *m\n", cmYAML("app")},
		{"resources: [https://example.com/x.yaml]\n", ""},
		{"resources: [../../etc]\n", ""},
		{"- a\n", "a: [b"},
	} {
		f.Add([]byte(seed[0]), []byte(seed[1]))
	}
	f.Fuzz(func(t *testing.T, kustomization, resource []byte) {
		tree := commitFiles(t, files{"app/kustomization.yaml": string(kustomization), "app/app.yaml": string(resource)})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		limits := Limits{MaxFileBytes: 64 << 10, MaxObjects: 100, MaxRenderBytes: 1 << 20, Timeout: 2 * time.Second}
		start := time.Now()
		res, err := NewRenderer(Options{}).RenderWith(ctx, tree, "app", Input{Limits: limits})
		if took := time.Since(start); took > 4*time.Second {
			t.Fatalf("rendering took %s", took)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("rendering outlived its own deadline: %v", err)
		}
		if err == nil && (len(res.Objects) > limits.MaxObjects || len(res.Files) != len(res.Objects)) {
			t.Fatalf("%d objects, %d files", len(res.Objects), len(res.Files))
		}
	})
}

// FuzzCheckAliases pins that the alias scan never panics, and refuses
// every bomb it is given as a seed.
func FuzzCheckAliases(f *testing.F) {
	f.Add([]byte(billionLaughs()))
	f.Add([]byte("a: &a [x]\nb: *a\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("- &x {<<: *x}\n"))
	f.Add([]byte("*"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkAliases("f.yaml", data)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml: ") {
			t.Fatalf("error does not name the file: %v", err)
		}
		if string(data) == billionLaughs() && err == nil {
			t.Fatal("bomb passed")
		}
	})
}

// TestRenderDefaultFileLimit pins the default of 5 MiB per file.
func TestRenderDefaultFileLimit(t *testing.T) {
	big := cmYAML("big") + "data: {x: '" + strings.Repeat("x", 5<<20) + "'}\n"
	_, err := render(t, files{"app/big.yaml": big}, "app")
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "app/big.yaml: over a render limit: the file is 5 MiB, more than 5 MiB (limits.maxFileBytes)") {
		t.Fatalf("Render of a 5 MiB+ file: %v", err)
	}
}
