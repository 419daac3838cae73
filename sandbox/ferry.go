package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
)

// TB is what StartFerry needs of a test or benchmark (testing.TB).
type TB interface {
	Helper()
	Fatal(args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
	TempDir() string
}

// StartFerry runs `ferry run --config configPath` with the ferry binary bin
// and a cache of its own until tb ends, when it is killed if still
// running; its output is logged if tb failed.
func StartFerry(tb TB, bin, configPath string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(bin, "run", "--config", configPath)
	logf, err := os.Create(filepath.Join(tb.TempDir(), "ferry.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+tb.TempDir())
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if tb.Failed() {
			data, _ := os.ReadFile(logf.Name())
			tb.Logf("ferry log:\n%s", data)
		}
	})
	return cmd
}
