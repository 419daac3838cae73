package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Failure modes for simulated pods. Put FailAnnotation with one of them on a
// pod template and its pods fail in that way (see stages/).
const (
	FailAnnotation     = "stage.ferry.dev/fail"
	FailCrashLoop      = "CrashLoopBackOff"
	FailImagePull      = "ImagePullBackOff"
	FailNeverReady     = "NeverReady"
	ExitCodeAnnotation = "stage.ferry.dev/exit-code"
)

//go:embed stages/*.yaml
var ferryStages embed.FS

// ClusterOptions configures StartCluster.
type ClusterOptions struct {
	// Nodes is the number of simulated nodes (default 1).
	Nodes int
	// Timeout bounds the start of the control plane (default 2m).
	Timeout time.Duration
}

// DefaultClusterOptions returns one node and a two minute start timeout.
func DefaultClusterOptions() ClusterOptions {
	return ClusterOptions{Nodes: 1, Timeout: 2 * time.Minute}
}

// Cluster is a running kwok control plane on loopback.
type Cluster struct {
	// Name is the kwok cluster name.
	Name string
	// Kubeconfig is the path of an admin kubeconfig for the cluster.
	Kubeconfig string
	// Config is the admin REST config, with client-side rate limiting off.
	Config *rest.Config
	// Client is a typed client for Config.
	Client kubernetes.Interface

	dir string
}

// StartCluster starts a kwok cluster with the binary runtime and the
// toolchain's binaries, adds simulated nodes and waits until they are Ready.
// Call Stop to remove it; Reap removes it if the caller dies first.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Cluster, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	bin, err := Tools()
	if err != nil {
		return nil, err
	}
	id := randomID()
	dir, err := newInstanceDir("cluster", id)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Name: "ferry-" + id, dir: dir}
	// kwokctl picks "unused" ports by probing them, so two clusters starting
	// at once (test packages run in parallel) can pick the same port. One
	// start at a time, across processes.
	unlock, err := lockStart(ctx)
	if err != nil {
		return nil, err
	}
	err = c.start(ctx, bin, opts)
	unlock()
	if err != nil {
		return nil, fmt.Errorf("start cluster %s (logs in %s): %w", c.Name, dir, errorsJoinStop(err, c.Stop(ctx)))
	}
	return c, nil
}

func errorsJoinStop(err, stopErr error) error {
	if stopErr != nil {
		return fmt.Errorf("%w (cleanup: %v)", err, stopErr)
	}
	return err
}

func (c *Cluster) start(ctx context.Context, bin string, opts ClusterOptions) error {
	stages, err := stageConfig(bin)
	if err != nil {
		return err
	}
	stagesPath := filepath.Join(c.dir, "stages.yaml")
	if err := os.WriteFile(stagesPath, stages, 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	args := []string{"create", "cluster", "--name", c.Name, "--runtime", "binary",
		"--kubeconfig", "", "--config", stagesPath, "--disable-qps-limits",
		"--timeout", opts.Timeout.String(), "--wait", opts.Timeout.String(),
		"--kube-apiserver-binary", filepath.Join(bin, "kube-apiserver"),
		"--kube-controller-manager-binary", filepath.Join(bin, "kube-controller-manager"),
		"--kube-scheduler-binary", filepath.Join(bin, "kube-scheduler"),
		"--kwok-controller-binary", filepath.Join(bin, "kwok"),
		"--etcd-binary", filepath.Join(bin, "etcd"),
	}
	if out, err := c.kwokctl(ctx, bin, args...); err != nil {
		return fmt.Errorf("kwokctl create cluster: %w\n%s", err, out)
	}
	c.Kubeconfig = filepath.Join(c.dir, "kwok", "clusters", c.Name, "kubeconfig.yaml")
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", c.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	c.Config = cfg
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	for i := range opts.Nodes {
		if err := c.addNode(ctx, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return err
		}
	}
	return nil
}

// stageConfig joins kwok's own node and pod stages (copied into bin/ by the
// toolchain build) with ferry's failure stages into one kwokctl config.
func stageConfig(bin string) ([]byte, error) {
	kwokStages, err := filepath.Glob(filepath.Join(bin, "kwok-stages", "*.yaml"))
	if err != nil || len(kwokStages) == 0 {
		return nil, fmt.Errorf("%s/kwok-stages has no stages: %w", bin, ErrNoToolchain)
	}
	sort.Strings(kwokStages)
	var buf bytes.Buffer
	for _, p := range kwokStages {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(data)
	}
	own, err := ferryStages.ReadDir("stages")
	if err != nil {
		return nil, err
	}
	for _, e := range own {
		data, err := ferryStages.ReadFile("stages/" + e.Name())
		if err != nil {
			return nil, err
		}
		buf.WriteString("\n---\n")
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

func (c *Cluster) kwokctl(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "kwokctl"), args...)
	cmd.Env = toolEnv(bin, "KWOK_WORKDIR="+filepath.Join(c.dir, "kwok"))
	return cmd.CombinedOutput()
}

func (c *Cluster) addNode(ctx context.Context, name string) error {
	qty := resource.MustParse
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
		},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{"cpu": qty("32"), "memory": qty("256Gi"), "pods": qty("250")},
			Allocatable: corev1.ResourceList{"cpu": qty("32"), "memory": qty("256Gi"), "pods": qty("250")},
		},
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("node %s never became Ready: %w; kwok-controller log:\n%s", name, err, c.logTail("kwok-controller.log", 20))
	}
	return nil
}

// ComponentLog returns the last lines of the log of one of the cluster's
// components, such as "kwok-controller" or "kube-apiserver".
func (c *Cluster) ComponentLog(component string, lines int) string {
	return c.logTail(component+".log", lines)
}

// logTail returns the last lines of one of the cluster's component logs.
func (c *Cluster) logTail(name string, lines int) string {
	data, err := os.ReadFile(filepath.Join(c.dir, "kwok", "clusters", c.Name, "logs", name))
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// lockStart takes the cross-process lock that serialises cluster starts.
func lockStart(ctx context.Context) (func(), error) {
	run, err := RunDir()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(run, "start.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("waiting for another cluster to start: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NewNamespace creates a namespace with a unique name that starts with
// prefix and waits for its default ServiceAccount, so pods can be created
// in it at once.
func (c *Cluster) NewNamespace(ctx context.Context, prefix string) (string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: strings.TrimSuffix(prefix, "-") + "-"}}
	created, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace %s*: %w", prefix, err)
	}
	name := created.Name
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := c.Client.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return "", fmt.Errorf("namespace %s: default ServiceAccount: %w", name, err)
	}
	return name, nil
}

// StopControlPlane stops every process of the cluster (etcd, the API
// server, the controllers, kwok) and keeps its data, as an outage of the
// control plane would. StartControlPlane brings it back.
func (c *Cluster) StopControlPlane(ctx context.Context) error {
	bin, err := Tools()
	if err != nil {
		return err
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("cluster %s before stop: %w", c.Name, err)
	}
	// Why delete the node Leases: kwok manages a node only while it holds
	// its Lease. Left in place, the Lease would still name the stopped
	// controller after the restart; the new one would fail to create its
	// own and try again only about 50s later, and meanwhile no pod on the
	// node would start, turn ready or go away (TestClusterStopStart).
	// Deleted just before the stop, the new controller creates them at
	// once.
	leases := c.Client.CoordinationV1().Leases("kube-node-lease")
	for _, n := range nodes.Items {
		if err := leases.Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s: delete its lease: %w", n.Name, err)
		}
	}
	if out, err := c.kwokctl(ctx, bin, "stop", "cluster", "--name", c.Name); err != nil {
		return fmt.Errorf("kwokctl stop cluster %s: %w\n%s", c.Name, err, out)
	}
	return nil
}

// StartControlPlane starts a cluster stopped by StopControlPlane on the same
// ports with the same data, and waits until the API server answers and
// every node is Ready again.
func (c *Cluster) StartControlPlane(ctx context.Context) error {
	bin, err := Tools()
	if err != nil {
		return err
	}
	const timeout = 2 * time.Minute
	if out, err := c.kwokctl(ctx, bin, "start", "cluster", "--name", c.Name, "--timeout", timeout.String(), "--wait", timeout.String()); err != nil {
		return fmt.Errorf("kwokctl start cluster %s: %w\n%s", c.Name, err, out)
	}
	nodes, err := c.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("cluster %s after start: %w", c.Name, err)
	}
	for _, n := range nodes.Items {
		if err := c.handOverNode(ctx, n.Name); err != nil {
			return fmt.Errorf("cluster %s after start: %w", c.Name, err)
		}
		if err := c.addNode(ctx, n.Name); err != nil {
			return fmt.Errorf("cluster %s after start: %w", c.Name, err)
		}
	}
	return nil
}

// handOverNode waits until the restarted kwok controller holds the
// node's Lease, that is, manages the node (see StopControlPlane).
func (c *Cluster) handOverNode(ctx context.Context, node string) error {
	leases := c.Client.CoordinationV1().Leases("kube-node-lease")
	start := time.Now()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := leases.Get(ctx, node, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("node %s: the restarted kwok controller took no lease: %w; kwok-controller log:\n%s", node, err, c.logTail("kwok-controller.log", 20))
	}
	if d := time.Since(start); d > 10*time.Second {
		return fmt.Errorf("node %s: the restarted kwok controller took its lease only after %s; pods on it stood still meanwhile", node, d.Round(time.Second))
	}
	return nil
}

// Stop deletes the cluster and its directory.
func (c *Cluster) Stop(ctx context.Context) error {
	if err := deleteCluster(ctx, c.dir, strings.TrimPrefix(c.Name, "ferry-")); err != nil {
		return err
	}
	return os.RemoveAll(c.dir)
}

// deleteCluster stops the kwok cluster of an instance directory.
func deleteCluster(ctx context.Context, dir, id string) error {
	bin, err := Tools()
	if err != nil {
		return err
	}
	c := &Cluster{Name: "ferry-" + id, dir: dir}
	if _, err := os.Stat(filepath.Join(dir, "kwok", "clusters", c.Name)); os.IsNotExist(err) {
		return nil
	}
	if out, err := c.kwokctl(ctx, bin, "delete", "cluster", "--name", c.Name); err != nil {
		return fmt.Errorf("kwokctl delete cluster %s: %w\n%s", c.Name, err, out)
	}
	return nil
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
