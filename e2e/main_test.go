// Package e2e tests ferry end to end against a real kwok control plane and
// a real Gitea forge from the tools/ toolchain. The tests never skip: a
// missing toolchain fails the package, because `make test` builds it first.
package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"ferry.dev/ferry/sandbox"
)

var (
	cluster *sandbox.Cluster
	forge   *sandbox.Gitea
)

func TestMain(m *testing.M) {
	// controller-runtime's clients log through a global logger; unset, it
	// prints a stack trace saying so. Its warnings go to stderr as text.
	ctrllog.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if reaped, err := sandbox.Reap(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: reap:", err)
	} else if len(reaped) > 0 {
		fmt.Fprintln(os.Stderr, "e2e: reaped stale instances:", reaped)
	}
	var err error
	start := time.Now()
	if cluster, err = sandbox.StartCluster(ctx, sandbox.DefaultClusterOptions()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer stop("cluster", cluster.Stop)
	fmt.Fprintf(os.Stderr, "e2e: cluster %s up in %s\n", cluster.Name, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if forge, err = sandbox.StartGitea(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer stop("gitea", forge.Stop)
	fmt.Fprintf(os.Stderr, "e2e: gitea %s up in %s\n", forge.URL, time.Since(start).Round(time.Millisecond))
	return m.Run()
}

func stop(what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: stop %s: %v\n", what, err)
	}
}
