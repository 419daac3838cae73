package render

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// billionLaughs is a 10-level YAML alias bomb: each level holds ten aliases
// of the one before, so the last expands to 10^10 strings.
func billionLaughs() string {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n  a0: &a0 lol\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d [", i, i)
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// measure runs f and returns what it allocated and how long it took.
func measure(f func()) (alloc uint64, took time.Duration) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	f()
	took = time.Since(start)
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, took
}

// TestRenderRefusesAliasBomb pins that a YAML alias bomb fails its
// rendering, naming the file, in well under a second and a few MiB,
// whether kustomize or the plain reader would have read it.
func TestRenderRefusesAliasBomb(t *testing.T) {
	bomb := billionLaughs()
	for _, tc := range []struct {
		name string
		fs   files
		file string
	}{
		{"plain", files{"envs/staging/app.yaml": cmYAML("app"), "envs/staging/bomb.yaml": bomb}, "envs/staging/bomb.yaml"},
		{"kustomize resource", files{"envs/staging/kustomization.yaml": "resources: [bomb.yaml]\n", "envs/staging/bomb.yaml": bomb}, "envs/staging/bomb.yaml"},
		{"kustomize patch", files{
			"envs/staging/kustomization.yaml": "resources: [app.yaml]\npatches: [{path: bomb.yaml}]\n",
			"envs/staging/app.yaml":           cmYAML("lol"),
			"envs/staging/bomb.yaml":          bomb,
		}, "envs/staging/bomb.yaml"},
		{"the kustomization itself", files{"envs/staging/kustomization.yaml": "resources: [app.yaml]\n" + strings.Replace(bomb, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n", "commonAnnotations:\n", 1), "envs/staging/app.yaml": cmYAML("x")}, "envs/staging/kustomization.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := commitFiles(t, tc.fs)
			var err error
			alloc, took := measure(func() {
				_, err = NewRenderer(DefaultOptions()).Render(t.Context(), tree, "envs/staging")
			})
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.file+": ") || !strings.Contains(err.Error(), "alias bomb") {
				t.Fatalf("Render: %v; want the alias bomb refused, naming %s", err, tc.file)
			}
			if took > time.Second || alloc > 64<<20 {
				t.Errorf("refusing the bomb took %s and allocated %d MiB; want under 1s and 64 MiB", took, alloc>>20)
			}
		})
	}
}

// TestCheckAliasesIsBounded measures the scan itself on the bomb, and lets
// ordinary anchors through.
func TestCheckAliasesIsBounded(t *testing.T) {
	bomb := []byte(billionLaughs())
	var err error
	allocs := testing.AllocsPerRun(5, func() { err = checkAliases("bomb.yaml", bomb) })
	if err == nil || !strings.Contains(err.Error(), "bomb.yaml: ") || !strings.Contains(err.Error(), "line ") {
		t.Fatalf("checkAliases: %v", err)
	}
	if allocs > 5000 {
		t.Errorf("checkAliases allocates %.0f times for a 1 KiB bomb; want a walk linear in the file", allocs)
	}
	ok := "base: &base {a: 1, b: [x, y]}\none: {<<: *base, c: 2}\ntwo: *base\nthree: [*base, *base]\nstar: '*.example.com'\n---\nnot: [yaml\n"
	if err := checkAliases("ok.yaml", []byte(ok)); err != nil {
		t.Errorf("ordinary anchors refused: %v", err)
	}
	// Wide but shallow: 50,000 aliases of one small node are fine ...
	wide := "x: &x [1, 2]\nl: [" + strings.Repeat("*x, ", 50000) + "*x]\n"
	if err := checkAliases("wide.yaml", []byte(wide)); err != nil {
		t.Errorf("wide aliases refused: %v", err)
	}
	// ... but not of a large one.
	big := "x: &x [" + strings.Repeat("1, ", 1000) + "1]\nl: [" + strings.Repeat("*x, ", 5000) + "*x]\n"
	if err := checkAliases("big.yaml", []byte(big)); !errors.Is(err, ErrLimit) {
		t.Errorf("5,000 aliases of 1,000 nodes: %v; want refused", err)
	}
}

func TestRenderLimits(t *testing.T) {
	many := ""
	for i := range 5 {
		many += cmYAML(fmt.Sprintf("cm%d", i)) + "---\n"
	}
	for _, tc := range []struct {
		name   string
		fs     files
		limits Limits
		want   string
	}{{
		name:   "a file too large",
		fs:     files{"app/a.yaml": cmYAML("a"), "app/big.yaml": cmYAML("big") + "data: {x: '" + strings.Repeat("x", 3000) + "'}\n"},
		limits: Limits{MaxFileBytes: 2048},
		want:   "app/big.yaml: over a render limit: the file is 3 KiB, more than 2 KiB (limits.maxFileBytes)",
	}, {
		name:   "a kustomized file too large",
		fs:     files{"app/kustomization.yaml": "resources: [big.yaml]\n", "app/big.yaml": cmYAML("big") + "data: {x: '" + strings.Repeat("x", 3000) + "'}\n"},
		limits: Limits{MaxFileBytes: 2048},
		want:   "app/big.yaml: over a render limit: the file is 3 KiB, more than 2 KiB (limits.maxFileBytes)",
	}, {
		name:   "too many objects",
		fs:     files{"app/a.yaml": many},
		limits: Limits{MaxObjects: 4},
		want:   "app/a.yaml: over a render limit: the rendering holds more than 4 objects (limits.maxObjects)",
	}, {
		name:   "too many kustomized objects",
		fs:     files{"app/kustomization.yaml": "resources: [a.yaml]\n", "app/a.yaml": many},
		limits: Limits{MaxObjects: 4},
		want:   "kustomize build: over a render limit: the rendering holds more than 4 objects (limits.maxObjects)",
	}, {
		name:   "too many bytes read",
		fs:     files{"app/a.yaml": many, "app/b.yaml": strings.ReplaceAll(many, "cm", "dm")},
		limits: Limits{MaxRenderBytes: int64(len(many)) + 10},
		want:   "app/b.yaml: over a render limit: the files read add up to more than",
	}, {
		name:   "too much JSON",
		fs:     files{"app/kustomization.yaml": "resources: [a.yaml]\ncommonAnnotations: {note: '" + strings.Repeat("n", 400) + "'}\n", "app/a.yaml": many},
		limits: Limits{MaxRenderBytes: 1500},
		want:   "over a render limit: the rendering is more than 1.5 KiB of JSON (limits.maxRenderBytes)",
	}, {
		name:   "past the deadline",
		fs:     files{"app/a.yaml": many},
		limits: Limits{Timeout: time.Nanosecond},
		want:   "over a render limit: the rendering ran past its deadline of 1ns (limits.renderTimeout)",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRenderer(DefaultOptions()).RenderWith(t.Context(), commitFiles(t, tc.fs), "app", Input{Limits: tc.limits})
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Render: %v\nwant %q", err, tc.want)
			}
		})
	}
}

// TestRenderLimitsAreCachedApart pins that a rendering admitted within
// large limits is not served to a caller with smaller ones.
func TestRenderLimitsAreCachedApart(t *testing.T) {
	r := NewRenderer(DefaultOptions())
	tree := commitFiles(t, files{"app/a.yaml": cmYAML("a") + "---\n" + cmYAML("b")})
	if _, err := r.Render(t.Context(), tree, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RenderWith(t.Context(), tree, "app", Input{Limits: Limits{MaxObjects: 1}}); !errors.Is(err, ErrLimit) {
		t.Fatalf("RenderWith within 1 object: %v; want refused", err)
	}
}

// TestRenderRefusesSymlinkFanOut pins that a directory is walked once: 20
// levels of two links each to the next level would be a million paths.
func TestRenderRefusesSymlinkFanOut(t *testing.T) {
	fs := files{"app/l0/cm.yaml": cmYAML("cm")}
	for i := range 20 {
		fs[fmt.Sprintf("app/l%d/a", i)] = fmt.Sprintf("-> ../l%d", i+1)
		fs[fmt.Sprintf("app/l%d/b", i)] = fmt.Sprintf("-> ../l%d", i+1)
	}
	fs["app/l20/x.yaml"] = cmYAML("x")
	tree := commitFiles(t, fs)
	var err error
	alloc, took := measure(func() { _, err = NewRenderer(DefaultOptions()).Render(t.Context(), tree, "app") })
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "is already rendered as") {
		t.Fatalf("Render: %v; want the fan-out refused", err)
	}
	if took > time.Second || alloc > 32<<20 {
		t.Errorf("took %s and %d MiB", took, alloc>>20)
	}
}

// TestRenderRefusesKustomizeFanOut pins that kustomizations including the
// next level twice, 12 levels deep (4,096 paths), are refused before
// kustomize builds any of them.
func TestRenderRefusesKustomizeFanOut(t *testing.T) {
	fs := files{"app/l12/kustomization.yaml": "resources: [cm.yaml]\n", "app/l12/cm.yaml": cmYAML("cm")}
	for i := range 12 {
		fs[fmt.Sprintf("app/l%d/kustomization.yaml", i)] = "resources: [a, b]\n"
		for _, side := range []string{"a", "b"} {
			fs[fmt.Sprintf("app/l%d/%s/kustomization.yaml", i, side)] = fmt.Sprintf("namePrefix: %s-\nresources: [../../l%d]\n", side, i+1)
		}
	}
	var err error
	_, took := measure(func() { _, err = render(t, fs, "app/l0") })
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "through more than 1000 paths") {
		t.Fatalf("Render: %v; want the fan-out refused", err)
	}
	if took > time.Second {
		t.Errorf("took %s", took)
	}
	// Two levels of the same are fine: 7 builds.
	small := files{"app/l2/kustomization.yaml": "resources: [cm.yaml]\n", "app/l2/cm.yaml": cmYAML("cm")}
	for i := range 2 {
		small[fmt.Sprintf("app/l%d/kustomization.yaml", i)] = "resources: [a, b]\n"
		for _, side := range []string{"a", "b"} {
			small[fmt.Sprintf("app/l%d/%s/kustomization.yaml", i, side)] = fmt.Sprintf("namePrefix: %s-\nresources: [../../l%d]\n", side, i+1)
		}
	}
	if res := mustRender(t, small, "app/l0"); len(res.Objects) != 4 {
		t.Errorf("%d objects, want 4", len(res.Objects))
	}
}
