package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(math.MaxInt64)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	limited, unlimited := write("limited", "536870912\n"), write("max", "max\n")
	t.Setenv("GOMEMLIMIT", "")
	if got := setMemoryLimit([]string{filepath.Join(dir, "absent"), limited}); got != 536870912/10*9 {
		t.Fatalf("limit from a 512Mi cgroup = %d, want 90%%", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 536870912/10*9 {
		t.Fatalf("runtime limit = %d", got)
	}
	if got := setMemoryLimit([]string{unlimited, limited}); got != 0 {
		t.Fatalf("no cgroup limit gave %d", got)
	}
	t.Setenv("GOMEMLIMIT", "100MiB")
	if got := setMemoryLimit([]string{limited}); got != 0 {
		t.Fatalf("GOMEMLIMIT set, yet ferry set %d", got)
	}
}
