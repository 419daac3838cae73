package source

import (
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// remote is a real bare git repository on disk, changed the way a person
// would: commits in a working copy, pushed with the git CLI.
type remote struct {
	t    *testing.T
	home string
	bare string // the bare repository
	work string // a working copy on main
	url  string // file:// URL of bare
}

func newRemote(t *testing.T) *remote {
	t.Helper()
	root := t.TempDir()
	r := &remote{t: t, home: filepath.Join(root, "home"), bare: filepath.Join(root, "remote.git"), work: filepath.Join(root, "work")}
	r.url = "file://" + r.bare
	for _, d := range []string{r.home, r.work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.git(root, "init", "--quiet", "--bare", r.bare)
	r.git(r.work, "init", "--quiet")
	r.git(r.work, "remote", "add", "origin", r.bare)
	return r
}

func (r *remote) git(dir string, args ...string) string {
	r.t.Helper()
	full := append([]string{"-c", "user.name=Ferry Tester", "-c", "user.email=tester@ferry.invalid",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"}, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+r.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files in the working copy, commits them on main, pushes
// main and returns the commit's hash.
func (r *remote) commit(files map[string]string, message string) string {
	r.t.Helper()
	for rel, content := range files {
		p := filepath.Join(r.work, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git(r.work, "add", "-A")
	r.git(r.work, "commit", "--quiet", "--allow-empty", "-m", message)
	r.git(r.work, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/main")
	return r.git(r.work, "rev-parse", "HEAD")
}

// serveHTTP serves the remote over git's smart HTTP protocol (the real
// git-http-backend) on loopback, for basic auth with user "git" and token as
// password. It returns the repository's URL.
func (r *remote) serveHTTP(token string) string {
	r.t.Helper()
	url, _, _ := r.serveHTTPSwitch(token)
	return url
}

// serveHTTPSwitch is serveHTTP, plus a switch that makes the server answer
// 503 while it is set, and the count of requests it answered.
func (r *remote) serveHTTPSwitch(token string) (url string, down *atomic.Bool, requests *atomic.Int64) {
	r.t.Helper()
	execPath := r.git(r.work, "--exec-path")
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.bare), "GIT_HTTP_EXPORT_ALL=1"},
	}
	down, requests = new(atomic.Bool), new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		requests.Add(1)
		if down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		if user, pass, ok := req.BasicAuth(); !ok || user != "git" || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="ferry-test"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, req)
	}))
	r.t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(r.bare), down, requests
}

// statusServer answers every request with code; it returns its URL.
func statusServer(t *testing.T, code int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, http.StatusText(code), code)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// resettingServer accepts connections and resets them at once (SO_LINGER
// 0), as a proxy cutting the link does; it returns its http:// URL.
func resettingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// within fails the test unless f returns within d.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not return within %s", d)
	}
}
