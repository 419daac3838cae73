package forge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// forge is a loopback stand-in for a forge's REST API: each route checks
// the request against the forge's documentation and answers like it.
type forge struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []string // "METHOD path", in order
	routes []route
}

type route struct {
	method, path string // path may end in "*" to match a prefix
	handle       func(w http.ResponseWriter, r *http.Request, body []byte)
}

// forgeWith starts a loopback forge serving its API under prefix, and a
// provider of newProvider talking to it at the forge's URL plus suffix.
func forgeWith(t *testing.T, prefix, suffix string, newProvider func(baseURL, token string) (Provider, error)) (*forge, Provider) {
	t.Helper()
	f := newForge(t, prefix)
	p, err := newProvider(f.srv.URL+suffix, testToken)
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

// newForge serves routes under prefix (e.g. /api/v4).
func newForge(t *testing.T, prefix string) *forge {
	f := &forge{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		if !strings.HasPrefix(path, prefix) {
			t.Errorf("request outside the API: %s %s", r.Method, path)
			http.NotFound(w, r)
			return
		}
		path = strings.TrimPrefix(path, prefix)
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+path)
		routes := append([]route(nil), f.routes...)
		f.mu.Unlock()
		for _, rt := range routes {
			if rt.method != r.Method {
				continue
			}
			if rt.path == path || strings.HasSuffix(rt.path, "*") && strings.HasPrefix(path, strings.TrimSuffix(rt.path, "*")) {
				rt.handle(w, r, body)
				return
			}
		}
		t.Errorf("unexpected request %s %s", r.Method, path)
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Not Found"}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *forge) handle(method, path string, h func(w http.ResponseWriter, r *http.Request, body []byte)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = append([]route{{method: method, path: path, handle: h}}, f.routes...)
}

func (f *forge) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *forge) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.routes = nil, nil
}

// reply writes v as JSON with code.
func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decode unmarshals a JSON request body into a map, failing the test on
// anything else.
func decode(t *testing.T, r *http.Request, body []byte) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.URL.Path, ct)
	}
	m := map[string]any{}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("%s %s: body is not a JSON object: %v: %s", r.Method, r.URL.Path, err, body)
	}
	return m
}

// fields asserts that m holds exactly want.
func fields(t *testing.T, what string, m map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if fmt.Sprint(m[k]) != fmt.Sprint(v) {
			t.Errorf("%s: field %s = %v, want %v", what, k, m[k], v)
		}
	}
	for k := range m {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected field %s = %v", what, k, m[k])
		}
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// forgeErr asserts err is a *ForgeError and returns it.
func forgeErr(t *testing.T, err error) *ForgeError {
	t.Helper()
	var fe *ForgeError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *ForgeError", err, err)
	}
	return fe
}

const (
	commitA = "0123456789abcdef0123456789abcdef01234567"
	commitB = "89abcdef0123456789abcdef0123456789abcdef"
	commitC = "fedcba9876543210fedcba9876543210fedcba98"
	commitD = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)

// testToken is a token no output may show.
const testToken = "ghp_s3cr3tT0k3nTh4tMustN0tL34k"
