package sandbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// TestClusterIgnoresKubectlOnPath puts a kubectl that always fails first on
// PATH, as a machine with another SDK's kubectl wrapper has, and checks that
// the cluster still starts and serves, and that the foreign kubectl never
// ran: the sandbox names the toolchain's own binaries.
func TestClusterIgnoresKubectlOnPath(t *testing.T) {
	t.Setenv("FERRY_RUN_DIR", t.TempDir())
	foreign := t.TempDir()
	ran := filepath.Join(foreign, "ran")
	script := "#!/bin/sh\necho \"$@\" >> " + ran + "\necho 'foreign kubectl: refusing' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(foreign, "kubectl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", foreign+string(os.PathListSeparator)+os.Getenv("PATH"))
	if p, err := exec.LookPath("kubectl"); err != nil || p != filepath.Join(foreign, "kubectl") {
		t.Fatalf("kubectl on PATH is %q (%v), want the failing one; the test would prove nothing", p, err)
	}

	c, err := StartCluster(t.Context(), DefaultClusterOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if _, err := c.Client.Discovery().ServerVersion(); err != nil {
		t.Fatalf("the cluster does not serve: %v", err)
	}
	if calls, err := os.ReadFile(ran); !os.IsNotExist(err) {
		t.Fatalf("the kubectl on PATH ran (%v):\n%s", err, calls)
	}
}

// TestClusterStopStart: a control plane stopped and started again serves
// on the same address with the objects it held, and its nodes are Ready.
func TestClusterStopStart(t *testing.T) {
	t.Setenv("FERRY_RUN_DIR", t.TempDir())
	c, err := StartCluster(t.Context(), DefaultClusterOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	ns, err := c.NewNamespace(t.Context(), "kept")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StopControlPlane(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.Discovery().ServerVersion(); err == nil {
		t.Fatal("the API server still answers after StopControlPlane")
	}
	if err := c.StartControlPlane(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace %s after the restart: %v", ns, err)
	}
	// kwok still runs pods through their stages: a new pod turns Running.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "after-restart", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "kwok-node-0", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c:v1"}}}}
	if _, err := c.Client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	})
	if err != nil {
		out, _ := exec.Command("find", c.dir, "-maxdepth", "4", "-name", "*.yaml").CombinedOutput()
		t.Fatalf("a pod created after the restart is not Running within 30s: %v\n%s\nkwok-controller:\n%s", err, out, c.ComponentLog("kwok-controller", 15))
	}
}
