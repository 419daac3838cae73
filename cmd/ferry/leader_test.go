package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// TestLeaderProcess is one competitor of the e2e test TestLeader, which
// builds this test binary and runs it as two ferry processes against one
// cluster. Run by `go test` without FERRY_LEADER_TEST_KUBECONFIG it has
// nothing to compete against and returns at once, like os/exec's helper
// processes.
//
// It prints "lead <id>" when its work starts, "stop <id>" when the work has
// stopped, and "exit <id> <error>" when runLeader returns; SIGTERM cancels
// it.
func TestLeaderProcess(t *testing.T) {
	kubeconfig := os.Getenv("FERRY_LEADER_TEST_KUBECONFIG")
	if kubeconfig == "" {
		return
	}
	namespace, id := os.Getenv("FERRY_LEADER_TEST_NAMESPACE"), os.Getenv("FERRY_LEADER_TEST_IDENTITY")
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(t.Context(), syscall.SIGTERM)
	defer stop()
	err = runLeader(ctx, cfg, namespace, id, func(ctx context.Context) {
		fmt.Printf("lead %s\n", id)
		<-ctx.Done()
		// why a sleep: it stands for work that takes a moment to wind
		// down; TestLeader checks that nobody starts meanwhile.
		time.Sleep(time.Second)
		fmt.Printf("stop %s\n", id)
	})
	fmt.Printf("exit %s %v\n", id, err)
}
