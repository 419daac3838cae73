// Package sandbox starts the real parts ferry runs against on one machine:
// a kwok control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok) and a Gitea forge, all on 127.0.0.1, built by the
// tools/ toolchain into bin/; a sample application repository; and the
// scripted story `ferry dev` plays on it. `ferry dev`, the end-to-end tests
// and the benchmarks use it.
//
// The sandbox names every binary it runs: each comes from the toolchain's
// bin directory, never from whatever happens to be first on PATH (see
// TestClusterIgnoresKubectlOnPath).
//
// Every instance lives in its own directory under RunDir together with the
// PID of the process that owns it. Reap removes the instances whose owner is
// gone (a test killed midway), and only those.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ToolNames lists the binaries the sandbox needs from the toolchain.
var ToolNames = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kwok", "kwokctl", "gitea"}

// ErrNoToolchain reports that bin/ lacks the test toolchain.
var ErrNoToolchain = errors.New("test toolchain not built: run `make tools`")

// Tools locates the toolchain's bin directory: $FERRY_TOOLS_BIN, or bin/ in
// the first parent of the working directory that holds ferry's go.mod.
func Tools() (string, error) {
	dir := os.Getenv("FERRY_TOOLS_BIN")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin")
	}
	var missing []string
	for _, name := range ToolNames {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%s lacks %s: %w", dir, strings.Join(missing, ", "), ErrNoToolchain)
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module ferry.dev/ferry\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("ferry's go.mod not found above the working directory; set FERRY_TOOLS_BIN: %w", ErrNoToolchain)
		}
		dir = parent
	}
}

// toolEnv is the environment of every child process the sandbox starts:
// the toolchain's bin directory first on PATH, and kwokctl told which
// kubectl to use, so a foreign kubectl on PATH is never run.
func toolEnv(bin string, extra ...string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra)+2)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "KWOK_KUBECTL_BINARY=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"KWOK_KUBECTL_BINARY="+filepath.Join(bin, "kubectl"))
	return append(env, extra...)
}

// RunDir is where instances keep their state: $FERRY_RUN_DIR, or
// ferry/run under the user cache directory.
func RunDir() (string, error) {
	if dir := os.Getenv("FERRY_RUN_DIR"); dir != "" {
		return dir, os.MkdirAll(dir, 0o755)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("run dir: %w", err)
	}
	dir := filepath.Join(cache, "ferry", "run")
	return dir, os.MkdirAll(dir, 0o755)
}

// owner identifies a live process by PID and start time, so a reused PID is
// not mistaken for the owner.
type owner struct {
	pid   int
	start string
}

func self() owner {
	return owner{pid: os.Getpid(), start: procStart(os.Getpid())}
}

func procStart(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command name (field 2) may hold spaces; fields after its ')' are fixed.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 19 {
			return f[19] // field 22: starttime
		}
	}
	return ""
}

func (o owner) String() string { return fmt.Sprintf("%d %s", o.pid, o.start) }

func (o owner) alive() bool {
	if o.pid <= 0 {
		return false
	}
	if err := syscall.Kill(o.pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return procStart(o.pid) == o.start
}

func readOwner(dir string) (owner, error) {
	data, err := os.ReadFile(filepath.Join(dir, "owner"))
	if err != nil {
		return owner{}, err
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return owner{}, fmt.Errorf("%s/owner: malformed", dir)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return owner{}, fmt.Errorf("%s/owner: %w", dir, err)
	}
	return owner{pid: pid, start: f[1]}, nil
}

// newInstanceDir creates RunDir/<kind>-<name> and records this process as its owner.
func newInstanceDir(kind, name string) (string, error) {
	run, err := RunDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(run, kind+"-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "owner"), []byte(self().String()), 0o644)
}

// Reap stops and removes every instance under RunDir whose owning process
// has exited. Instances of live processes, and anything the sandbox did not
// create, are left alone. It returns the instances it removed.
func Reap(ctx context.Context) ([]string, error) {
	run, err := RunDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(run)
	if err != nil {
		return nil, err
	}
	var reaped []string
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(run, e.Name())
		o, err := readOwner(dir)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && o.alive()) {
			continue
		}
		kind, name, _ := strings.Cut(e.Name(), "-")
		switch kind {
		case "cluster":
			err = deleteCluster(ctx, dir, name)
		case "gitea":
			err = killRecorded(dir)
		default:
			continue
		}
		if err == nil {
			err = os.RemoveAll(dir)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reap %s: %w", dir, err))
			continue
		}
		reaped = append(reaped, e.Name())
	}
	return reaped, errors.Join(errs...)
}

// startRecorded starts cmd in its own process group and records its PID in
// dir, so Reap can stop it after its owner died.
func startRecorded(dir string, cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
}

// killRecorded kills the process group recorded by startRecorded.
func killRecorded(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "pid"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("%s/pid: %w", dir, err)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
