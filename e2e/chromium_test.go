package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chromium runs Debian's headless Chromium with args, offline.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: `make test` installs Debian's chromium package")
	}
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	out, err := exec.CommandContext(t.Context(), bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// checkInChromium renders a badge and the status page in headless Chromium:
// the SVG must parse (Chromium shows a parsererror for bad XML), and the
// page's screenshot is kept in $FERRY_SCREENSHOT_DIR when set.
func checkInChromium(t *testing.T, addr, svg, history string) {
	t.Helper()
	dir := t.TempDir()
	badge := filepath.Join(dir, "staging.svg")
	if err := os.WriteFile(badge, []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := chromium(t, "--dump-dom", "file://"+badge)
	if !strings.Contains(dom, "<svg") || strings.Contains(dom, "parsererror") {
		t.Fatalf("Chromium did not render the badge as SVG:\n%s", dom)
	}
	page := "http://" + addr + "/environments/staging"
	if dom := chromium(t, "--dump-dom", page); !strings.Contains(dom, history) {
		t.Fatalf("the status page in Chromium lacks %s", history)
	}
	shots := os.Getenv("FERRY_SCREENSHOT_DIR")
	if shots == "" {
		shots = dir
	}
	shot := filepath.Join(shots, "status-page.png")
	chromium(t, "--window-size=1200,900", "--screenshot="+shot, page)
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 1000 {
		t.Fatalf("no screenshot of the status page: %v", err)
	}
}
