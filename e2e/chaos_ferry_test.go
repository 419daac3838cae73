package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ferryProc is `ferry run` as a supervised process, as a Deployment keeps
// one replica: the soak SIGKILLs it and starts it again after a pause, and
// a process that exits on its own is started again after a second and
// counted.
type ferryProc struct {
	bin, cfgPath, logPath, cacheDir, addr string

	mu         sync.Mutex
	cmd        *exec.Cmd
	starts     int
	expectKill bool
	restartIn  time.Duration
	// exits are the exits the soak did not cause.
	exits []string
	// down are the spans ferry was not running, from its death to its
	// restart.
	down []span
	done chan struct{}
}

// span is a stretch of time.
type span struct{ from, to time.Time }

// startSupervised starts ferry and keeps it running until the test ends.
func startSupervised(t *testing.T, bin, cfgPath, addr string) *ferryProc {
	t.Helper()
	dir := t.TempDir()
	p := &ferryProc{bin: bin, cfgPath: cfgPath, addr: addr, logPath: filepath.Join(dir, "ferry.log"), cacheDir: filepath.Join(dir, "cache"), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	go p.supervise(ctx, started)
	if err := <-started; err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		p.mu.Lock()
		if p.cmd != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		p.mu.Unlock()
		<-p.done
		if t.Failed() {
			t.Logf("ferry log (last 300 lines of %s):\n%s", p.logPath, tailFile(p.logPath, 300))
		}
	})
	return p
}

func (p *ferryProc) supervise(ctx context.Context, started chan<- error) {
	defer close(p.done)
	var downSince time.Time
	for {
		cmd, err := p.start()
		if !downSince.IsZero() {
			p.mu.Lock()
			p.down = append(p.down, span{downSince, time.Now()})
			p.mu.Unlock()
		}
		if started != nil {
			started <- err
			started = nil
		}
		if err != nil {
			return
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			return
		case err := <-exited:
			downSince = time.Now()
			p.mu.Lock()
			wait := p.restartIn
			if !p.expectKill {
				p.exits = append(p.exits, fmt.Sprintf("%s: %v", downSince.Format(time.TimeOnly), err))
				wait = time.Second
			}
			p.expectKill, p.restartIn = false, 0
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			// why a sleep: a killed replica comes back after a pause, as a
			// pod does after its restart back-off.
			case <-time.After(wait):
			}
		}
	}
}

func (p *ferryProc) start() (*exec.Cmd, error) {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, "run", "--config", p.cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+p.cacheDir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ferry run: %w", err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.starts++
	p.mu.Unlock()
	return cmd, nil
}

// kill SIGKILLs ferry, which is started again after pause.
func (p *ferryProc) kill(pause time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expectKill, p.restartIn = true, pause
	return p.cmd.Process.Signal(syscall.SIGKILL)
}

// startCount is how many times ferry was started.
func (p *ferryProc) startCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// unexpectedExits are the exits the soak did not cause.
func (p *ferryProc) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exits...)
}

// downSpans are the spans ferry was not running.
func (p *ferryProc) downSpans() []span {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]span(nil), p.down...)
}

// procMetrics are the figures of ferry's /metrics the soak compares.
type procMetrics struct {
	rss, goroutines float64
}

// metrics reads process_resident_memory_bytes and go_goroutines from
// ferry's /metrics.
func (p *ferryProc) metrics(ctx context.Context) (procMetrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/metrics", nil)
	if err != nil {
		return procMetrics{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return procMetrics{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return procMetrics{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var m procMetrics
	found := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.rss, err = strconv.ParseFloat(value, 64)
			found++
		case "go_goroutines":
			m.goroutines, err = strconv.ParseFloat(value, 64)
			found++
		}
		if err != nil {
			return procMetrics{}, fmt.Errorf("/metrics %s: %w", name, err)
		}
	}
	if found != 2 {
		return procMetrics{}, fmt.Errorf("/metrics lacks process_resident_memory_bytes or go_goroutines")
	}
	return m, sc.Err()
}

// steadyMetrics samples /metrics five times, a second apart, and keeps the
// smallest RSS and goroutine count. Why the smallest: the figures are as
// ferry reports them (no forced GC, which ferry offers no way to ask
// for), and a sample taken while a poll or a status post is in flight
// carries its short-lived goroutines and garbage; the minimum of a few
// samples is the level ferry keeps between them.
func (p *ferryProc) steadyMetrics(ctx context.Context) (procMetrics, error) {
	var best procMetrics
	for i := range 5 {
		if i > 0 {
			select {
			case <-ctx.Done():
				return best, ctx.Err()
			// why a sleep: samples a second apart, see above.
			case <-time.After(time.Second):
			}
		}
		m, err := p.metrics(ctx)
		if err != nil {
			return best, err
		}
		if i == 0 || m.rss < best.rss {
			best.rss = m.rss
		}
		if i == 0 || m.goroutines < best.goroutines {
			best.goroutines = m.goroutines
		}
	}
	return best, nil
}

// tailFile returns the last n lines of the file at path.
func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
