package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDevStory runs `make demo` unattended: it starts
// its own cluster and forge, plays the promote-then-revert story and exits 0.
func TestDevStory(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "make", "-C", "..", "demo", "DEMO_FLAGS=--exit-after-story --addr "+freeAddr(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ferry dev: %v\n%s", err, out)
	}
	for _, want := range []string{
		"staging @", "→ promoted to production",
		`"Release shop 1.1.0"`, `"Release shop 1.2.0"`, "CrashLoopBackOff", "→ reverted by",
		"production never saw", `Revert "Release shop 1.2.0"`, "git log --graph", "story done",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
