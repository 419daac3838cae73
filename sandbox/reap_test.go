package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func TestMain(m *testing.M) {
	if os.Getenv("FERRY_REAP_CHILD") != "" {
		os.Exit(reapChild())
	}
	os.Exit(m.Run())
}

// reapChild starts a cluster and a Gitea, prints their directories and
// waits to be killed, as a test run killed midway would.
func reapChild() int {
	ctx := context.Background()
	c, err := StartCluster(ctx, DefaultClusterOptions())
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	g, err := StartGitea(ctx)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready", c.dir, g.dir)
	select {}
}

// processesUnder lists the PIDs whose command line mentions dir.
func processesUnder(t *testing.T, dir string) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestReapRemovesOnlyDeadOwners kills a process that owns a cluster and a
// Gitea, and checks that Reap stops them and removes their directories,
// while the instance of a live process is left running.
func TestReapRemovesOnlyDeadOwners(t *testing.T) {
	t.Setenv("FERRY_RUN_DIR", t.TempDir())
	ctx := t.Context()
	live, err := StartCluster(ctx, DefaultClusterOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Stop(context.Background()) })

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "FERRY_REAP_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		_ = child.Process.Kill()
		t.Fatalf("child: %q %v", line, err)
	}
	dirs := strings.Fields(line)[1:]
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, _ = child.Process.Wait()
	for _, d := range dirs {
		if len(processesUnder(t, d)) == 0 {
			t.Fatalf("no process of %s survived the kill; the test would prove nothing", d)
		}
	}

	reaped, err := Reap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Base(dirs[0]), filepath.Base(dirs[1])}
	slices.Sort(want)
	slices.Sort(reaped)
	if !slices.Equal(reaped, want) {
		t.Fatalf("reaped %v, want %v", reaped, want)
	}
	for _, d := range dirs {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			return len(processesUnder(t, d)) == 0, nil
		})
		if err != nil {
			t.Fatalf("processes of %s still running after reap: %v", d, processesUnder(t, d))
		}
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("%s still exists after reap", d)
		}
	}
	if _, err := live.Client.Discovery().ServerVersion(); err != nil {
		t.Fatalf("the live cluster was harmed by reap: %v", err)
	}
	if len(processesUnder(t, live.dir)) == 0 {
		t.Fatal("the live cluster's processes are gone")
	}
}
