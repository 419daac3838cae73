package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"ferry.dev/ferry/forge"
	"ferry.dev/ferry/internal/defaults"
	"ferry.dev/ferry/internal/lru"
	"ferry.dev/ferry/internal/text"
	"ferry.dev/ferry/state"
)

// ServerOptions configures the HTTP server.
type ServerOptions struct {
	// WebhookSecret verifies webhook deliveries: the HMAC key of GitHub and
	// Gitea, the token of GitLab. Empty turns /hooks/ off (404).
	WebhookSecret []byte
	// OnPullRequest, when set, is called for pull request events that may
	// change a plan (opened, new commits, reopened, base edited). It must
	// not block: the forge waits for the answer.
	OnPullRequest func(repo forge.Repo, number int, headSHA, baseBranch string)
	// Ready answers /readyz; nil is always ready.
	Ready func() bool
	// Registry is served on /metrics; nil serves no /metrics.
	Registry *prometheus.Registry
	// MaxBodyBytes bounds a webhook delivery; larger ones get 413.
	MaxBodyBytes int64
	// ReplayMemory is how many delivery IDs are remembered to ignore replays.
	ReplayMemory int
	// Log receives the server's logs; default slog.Default().
	Log *slog.Logger
	// Version is served on /api/v1/version.
	Version Version
}

// DefaultServerOptions returns the options ferry serves with, without a
// secret or registry.
func DefaultServerOptions() ServerOptions {
	return ServerOptions{MaxBodyBytes: 1 << 20, ReplayMemory: 4096}
}

type server struct {
	src        Source
	opts       ServerOptions
	log        *slog.Logger
	deliveries *lru.Map[string, struct{}]
}

// NewServer returns ferry's HTTP handler:
//
//	GET  /healthz, /readyz, /metrics
//	GET  /badge/<env>.svg, /badge/<env>/<sha>.svg
//	GET  /api/v1/environments, /api/v1/environments/<env>
//	GET  /environments, /environments/<env>[?commit=<sha>]
//	POST /hooks/github, /hooks/gitlab, /hooks/gitea
func NewServer(src Source, opts ServerOptions) http.Handler {
	d := DefaultServerOptions()
	defaults.Positive(&opts.MaxBodyBytes, d.MaxBodyBytes)
	defaults.Positive(&opts.ReplayMemory, d.ReplayMemory)
	opts.Log = defaults.Or(opts.Log, slog.Default())
	s := &server{src: src, opts: opts, log: opts.Log, deliveries: lru.New[string, struct{}](opts.ReplayMemory)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeText(w, http.StatusOK, "ok\n") })
	mux.HandleFunc("GET /readyz", s.ready)
	if opts.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{Registry: opts.Registry}))
	}
	mux.HandleFunc("GET /badge/{file}", s.environmentBadge)
	mux.HandleFunc("GET /badge/{env}/{file}", s.commitBadge)
	mux.HandleFunc("GET /api/v1/version", s.version)
	mux.HandleFunc("GET /api/v1/environments", s.apiList)
	mux.HandleFunc("GET /api/v1/environments/{env}", s.apiEnvironment)
	mux.HandleFunc("GET /environments", s.indexPage)
	mux.HandleFunc("GET /environments/{env}", s.environmentPage)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/environments", http.StatusFound)
	})
	mux.HandleFunc("POST /hooks/{provider}", s.hook)
	return mux
}

func (s *server) ready(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Ready != nil && !s.opts.Ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
		return
	}
	writeText(w, http.StatusOK, "ok\n")
}

// environment reads env's state, answering the error itself: 404 for an
// unknown environment, 500 (details in the log, never in the answer) when
// the state cannot be read.
func (s *server) environment(w http.ResponseWriter, r *http.Request, env string, answer func(int, string)) (*state.Environment, bool) {
	if !slices.Contains(s.src.Environments(), env) {
		answer(http.StatusNotFound, "no environment "+env)
		return nil, false
	}
	e, err := s.src.Environment(r.Context(), env)
	if err != nil || e == nil {
		s.log.Error("report: read environment state", "environment", env, "error", err)
		answer(http.StatusInternalServerError, "cannot read the state of "+env)
		return nil, false
	}
	return sanitized(e), true
}

func (s *server) environmentBadge(w http.ResponseWriter, r *http.Request) {
	env, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	e, ok := s.environment(w, r, env, badgeError(w, env))
	if !ok {
		return
	}
	writeBadge(w, http.StatusOK, EnvironmentBadge(e))
}

func (s *server) commitBadge(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	sha, ok := strings.CutSuffix(r.PathValue("file"), ".svg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if len(sha) < 4 || len(sha) > 64 || !text.IsHex(sha) {
		writeBadge(w, http.StatusBadRequest, Badge{Label: env, Message: "not a commit", Colour: ColourUnknown})
		return
	}
	e, ok := s.environment(w, r, env, badgeError(w, env))
	if !ok {
		return
	}
	writeBadge(w, http.StatusOK, CommitBadge(e, sha))
}

// badgeError answers with a grey badge, so a README shows something.
func badgeError(w http.ResponseWriter, env string) func(int, string) {
	return func(code int, _ string) {
		msg := "unavailable"
		if code == http.StatusNotFound {
			msg = "no such environment"
		}
		writeBadge(w, code, Badge{Label: env, Message: msg, Colour: ColourUnknown})
	}
}

func writeBadge(w http.ResponseWriter, code int, b Badge) {
	w.Header().Set("Content-Type", "image/svg+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, max-age=0")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b.SVG())
}

// environmentList is the JSON of /api/v1/environments.
type environmentList struct {
	Environments []*state.Environment `json:"environments"`
}

func (s *server) apiList(w http.ResponseWriter, r *http.Request) {
	out := environmentList{Environments: []*state.Environment{}}
	failed := false
	for _, env := range s.src.Environments() {
		e, ok := s.environment(w, r, env, func(int, string) { failed = true })
		if !ok {
			break
		}
		out.Environments = append(out.Environments, e)
	}
	if failed {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "cannot read the state of every environment"})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

type apiError struct {
	Error string `json:"error"`
}

func (s *server) apiEnvironment(w http.ResponseWriter, r *http.Request) {
	e, ok := s.environment(w, r, r.PathValue("env"), func(code int, msg string) {
		writeJSON(w, code, apiError{Error: msg})
	})
	if ok {
		writeJSON(w, http.StatusOK, e)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		writeText(w, http.StatusInternalServerError, "cannot encode the answer\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(text))
}
