package render

import (
	"sync"
	"testing"
	"time"
)

func TestRenderCache(t *testing.T) {
	r := NewRenderer(DefaultOptions())
	tree := commitFiles(t, overlayRepo)
	render := func(dir string) *Result {
		t.Helper()
		res, err := r.Render(t.Context(), tree, dir)
		if err != nil {
			t.Fatalf("Render(%s): %v", dir, err)
		}
		return res
	}

	first := render("envs/staging")
	second := render("envs/staging")
	third := render("./envs/staging/") // the same directory, spelled otherwise
	if n := r.builds.Load(); n != 1 {
		t.Errorf("builds = %d after three renders of one tree and directory, want 1", n)
	}
	if first.Digest != second.Digest || first.Digest != third.Digest {
		t.Errorf("cached digests differ: %s, %s, %s", first.Digest, second.Digest, third.Digest)
	}

	render("envs/production")
	if n := r.builds.Load(); n != 2 {
		t.Errorf("builds = %d after another directory, want 2", n)
	}

	// The same tree from another repository (another commit, same content)
	// has the same hash, and is a cache hit.
	render2, err := r.Render(t.Context(), commitFiles(t, overlayRepo), "envs/staging")
	if err != nil || render2.Digest != first.Digest {
		t.Fatalf("Render of an identical tree = %v, %v", render2, err)
	}
	if n := r.builds.Load(); n != 2 {
		t.Errorf("builds = %d after an identical tree, want 2", n)
	}
}

func TestRenderCacheReturnsCopies(t *testing.T) {
	r := NewRenderer(DefaultOptions())
	tree := commitFiles(t, overlayRepo)
	res, err := r.Render(t.Context(), tree, "envs/staging")
	if err != nil {
		t.Fatal(err)
	}
	want := ids(res.Objects)
	res.Objects[0].SetName("changed-by-caller")
	res.Objects[1].Object["spec"] = "gone"
	res.Objects = res.Objects[:1]
	res.Digest = "changed"

	again, err := r.Render(t.Context(), tree, "envs/staging")
	if err != nil {
		t.Fatal(err)
	}
	if r.builds.Load() != 1 {
		t.Fatalf("builds = %d, want a cache hit", r.builds.Load())
	}
	if got := ids(again.Objects); !equal(got, want) {
		t.Errorf("after the caller changed its copy, the cache returns %v, want %v", got, want)
	}
	if _, ok := again.Objects[1].Object["spec"].(map[string]any); !ok {
		t.Errorf("after the caller changed its copy, the cache returns spec %v", again.Objects[1].Object["spec"])
	}
	if again.Digest == "changed" {
		t.Errorf("the caller changed the cached digest")
	}
}

// TestCacheKeyIsRootTree pins why the cache is keyed by the root tree: two
// commits whose envs/staging trees are identical render differently when the
// base they share changed.
func TestCacheKeyIsRootTree(t *testing.T) {
	repo := newTestRepo(t)
	repo.write(overlayRepo)
	before := repo.commit()
	repo.write(files{"base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 8080}]}\n"})
	after := repo.commit()

	b, _ := before.Tree("envs/staging")
	a, _ := after.Tree("envs/staging")
	if a.Hash != b.Hash {
		t.Fatalf("test setup: envs/staging changed between the commits")
	}

	r := NewRenderer(DefaultOptions())
	r1, err := r.Render(t.Context(), before, "envs/staging")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := r.Render(t.Context(), after, "envs/staging")
	if err != nil {
		t.Fatal(err)
	}
	if r1.Digest == r2.Digest {
		t.Errorf("a change in the base did not change the overlay's rendering: %s", r1.Digest)
	}
	if n := r.builds.Load(); n != 2 {
		t.Errorf("builds = %d, want 2", n)
	}
}

func TestRenderCacheEviction(t *testing.T) {
	r := NewRenderer(Options{CacheSize: 2})
	tree := commitFiles(t, overlayRepo)
	steps := []struct {
		dir    string
		builds int64
	}{
		{"envs/staging", 1},
		{"envs/production", 2},
		{"envs/staging", 2},    // hit; staging is now the most recent
		{"base", 3},            // evicts production
		{"envs/staging", 3},    // still cached
		{"envs/production", 4}, // evicted: built again
	}
	for i, s := range steps {
		if _, err := r.Render(t.Context(), tree, s.dir); err != nil {
			t.Fatalf("step %d: Render(%s): %v", i, s.dir, err)
		}
		if n := r.builds.Load(); n != s.builds {
			t.Errorf("step %d (%s): builds = %d, want %d", i, s.dir, n, s.builds)
		}
	}
}

func TestRenderCacheOffAndFailures(t *testing.T) {
	r := NewRenderer(Options{CacheSize: 0})
	tree := commitFiles(t, overlayRepo)
	for range 2 {
		if _, err := r.Render(t.Context(), tree, "envs/staging"); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.builds.Load(); n != 2 {
		t.Errorf("builds = %d with the cache off, want 2", n)
	}

	r = NewRenderer(DefaultOptions())
	broken := commitFiles(t, files{"envs/x/a.yaml": "a: ["})
	for range 2 {
		if _, err := r.Render(t.Context(), broken, "envs/x"); err == nil {
			t.Fatal("Render of broken YAML succeeded")
		}
	}
	if n := r.builds.Load(); n != 2 {
		t.Errorf("builds = %d for two failed renders, want 2 (failures are not cached)", n)
	}
}

func TestRenderConcurrent(t *testing.T) {
	r := NewRenderer(DefaultOptions())
	tree := commitFiles(t, overlayRepo)
	dirs := []string{"envs/staging", "envs/production", "base"}
	const perDir = 6
	digests := make([][]string, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		digests[i] = make([]string, perDir)
		for j := range perDir {
			wg.Go(func() {
				res, err := r.Render(t.Context(), tree, dir)
				if err != nil {
					t.Errorf("Render(%s): %v", dir, err)
					return
				}
				digests[i][j] = res.Digest
			})
		}
	}
	wg.Wait()
	if n := r.builds.Load(); n != int64(len(dirs)) {
		t.Errorf("builds = %d for %d concurrent renders of %d directories, want %d", n, len(dirs)*perDir, len(dirs), len(dirs))
	}
	for i, ds := range digests {
		for _, d := range ds {
			if d != ds[0] {
				t.Errorf("%s: concurrent renders disagree: %v", dirs[i], ds)
				break
			}
		}
	}
}

// TestRenderBuildsWaitForASlot: with every build slot taken, a rendering
// waits, and its deadline counts from its own build's start, not from the
// wait.
func TestRenderBuildsWaitForASlot(t *testing.T) {
	opts := DefaultOptions()
	opts.Builds, opts.Limits.Timeout = 1, 300*time.Millisecond
	r := NewRenderer(opts)
	tree := commitFiles(t, overlayRepo)
	r.slots <- struct{}{} // another environment's build holds the only slot
	done := make(chan error, 1)
	go func() {
		_, err := r.Render(t.Context(), tree, "envs/staging")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("rendered while the only slot was taken (err=%v)", err)
	case <-time.After(2 * time.Second): // why a sleep: past the rendering's timeout and its grace second
	}
	if n := r.builds.Load(); n != 0 {
		t.Fatalf("builds = %d while the only slot was taken, want 0", n)
	}
	<-r.slots
	if err := <-done; err != nil {
		t.Fatalf("a rendering that waited for its slot failed: %v", err)
	}
}

// TestRenderJoinedBuildWaitsItsOwnTimeout: a rendering that joins a build
// of the same tree already under way past its deadline (the retry of a
// rendering that timed out on a busy machine) waits its own full timeout
// for that build, not none of it.
func TestRenderJoinedBuildWaitsItsOwnTimeout(t *testing.T) {
	opts := DefaultOptions()
	opts.Limits.Timeout = 500 * time.Millisecond
	r := NewRenderer(opts)
	tree := commitFiles(t, overlayRepo)
	want, err := NewRenderer(DefaultOptions()).Render(t.Context(), tree, "envs/staging")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store(want)
	if err != nil {
		t.Fatal(err)
	}
	key := cacheKey{tree: tree.Hash, dir: "envs/staging", limits: opts.Limits.orDefault().String()}.String()
	// A build that got its slot a minute ago and is still running.
	release := make(chan struct{})
	r.startedMu.Lock()
	r.started[key] = time.Now().Add(-time.Minute)
	r.startedMu.Unlock()
	joined := make(chan struct{})
	go r.flights.Do(key, func() (any, error) {
		close(joined)
		<-release
		return st, nil
	})
	<-joined
	time.AfterFunc(time.Second, func() { close(release) }) // within the joiner's 1.5s, past the build's own
	got, err := r.Render(t.Context(), tree, "envs/staging")
	if err != nil {
		t.Fatalf("a rendering that joined a late build failed at once: %v", err)
	}
	if got.Digest != want.Digest || r.builds.Load() != 0 {
		t.Fatalf("digest %s after %d builds of its own, want the joined build's %s", got.Digest, r.builds.Load(), want.Digest)
	}

	// And its own timeout does bound the wait: a build that never ends
	// fails the joiner once the timeout and its grace second have passed.
	r.startedMu.Lock()
	r.started["hung"] = time.Now().Add(-time.Minute)
	r.startedMu.Unlock()
	if wait := r.remaining("hung", time.Now(), 1500*time.Millisecond); wait < time.Second || wait > 1500*time.Millisecond {
		t.Fatalf("a joiner's wait for a late build = %s, want its own 1.5s", wait)
	}
}
