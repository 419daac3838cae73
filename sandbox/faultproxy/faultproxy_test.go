package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string, timeout time.Duration) (string, error) {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestFaults(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	defer srv.Close()
	p, url, err := StartFor(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if url == srv.URL || !strings.Contains(url, p.Addr) {
		t.Fatalf("rewritten URL %s", url)
	}
	if body, err := get(t, url, 5*time.Second); err != nil || body != "hello" {
		t.Fatalf("through the proxy: %q, %v", body, err)
	}

	remove, err := p.Inject(Fault{Kind: Reset, Direction: Upstream})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, url, 5*time.Second); err == nil {
		t.Fatal("no error through a resetting proxy")
	}
	remove()
	if body, err := get(t, url, 5*time.Second); err != nil || body != "hello" {
		t.Fatalf("after removing the reset: %q, %v", body, err)
	}

	if _, err := p.Inject(Fault{Kind: Latency, Direction: Downstream, Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := get(t, url, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("answer with 300ms latency took %s", d)
	}
	p.Clear()

	// A blackhole for a second: requests hang, then pass once it is gone.
	if err := p.InjectFor(t.Context(), Fault{Kind: Blackhole, Direction: Both}, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, url, 300*time.Millisecond); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("through a blackhole: %v, want a client timeout", err)
	}
	time.Sleep(1200 * time.Millisecond)
	before := p.Writes()
	if body, err := get(t, url, 5*time.Second); err != nil || body != "hello" {
		t.Fatalf("after the blackhole: %q, %v", body, err)
	}
	if p.Writes() <= before {
		t.Fatalf("writes %d, want more than %d after a request", p.Writes(), before)
	}

	if err := p.InjectFor(t.Context(), Fault{Kind: Timeout, After: 100 * time.Millisecond}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, url, 5*time.Second); err == nil {
		t.Fatal("no error through a timeout fault")
	}
}

// TestCutWrites: a request with a body of at least MinBytes is cut, a
// small one passes.
func TestCutWrites(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strconv.Itoa(len(b)))
	}))
	defer srv.Close()
	p, url, err := StartFor(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Inject(Fault{Kind: CutWrites, Direction: Upstream, MinBytes: 1000}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if body, err := get(t, url, 5*time.Second); err != nil || body != "0" {
		t.Fatalf("a small read: %q, %v", body, err)
	}
	resp, err := c.Post(url, "text/plain", strings.NewReader(strings.Repeat("x", 2000)))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a 2000-byte write passed a cut at 1000 bytes")
	}
}

// TestNotInFerryBinary: the proxy is test scaffolding; the ferry binary
// must not link it.
func TestNotInFerryBinary(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "ferry.dev/ferry/cmd/ferry").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "toxiproxy") || strings.HasSuffix(pkg, "/faultproxy") {
			t.Errorf("the ferry binary links %s", pkg)
		}
	}
}
