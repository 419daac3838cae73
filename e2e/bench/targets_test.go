package bench

import (
	"fmt"
	"sync"
)

// target is one row of the table `make bench` ends with: a measure, its
// figure before ferry watched what it applied, and the target.
type target struct {
	measure, before, goal string
}

// targets are the rows, in order; figures holds what this run measured.
var (
	targets = []target{
		{"no-op reconcile of 1000 objects vs kubectl apply --server-side", "0.94× (5.0 s)", "≤ 0.10×"},
		{"API requests of a no-op reconcile of 1000 objects", "~2000", "≤ 5"},
		{"1-object change in 1000 vs kubectl (the same 1000-object file)", "0.56×", "≤ 0.10×"},
		{"hand edit → corrected, p50 / p95", "next interval", "≤ 1 s / ≤ 2 s"},
		{"failing pod status → revert commit in git, p50", "—", "≤ 1 s"},
		{"steady-state requests per minute, 10 environments × 1000 objects, interval 1m", "~20,000", "≤ 100"},
		{"peak RSS, 10 environments × 1000 objects", "— (115 MiB for 1)", "≤ 150 MiB"},
		{"cold apply of 1000 objects vs kubectl", "0.59×", "≤ 0.50×"},
	}
	figuresMu sync.Mutex
	figures   = map[int]string{}
)

// measured records this run's figure of row i.
func measured(i int, format string, args ...any) {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	figures[i] = fmt.Sprintf(format, args...)
}

// printTargets prints the table when a benchmark measured any row.
func printTargets() {
	figuresMu.Lock()
	defer figuresMu.Unlock()
	if len(figures) == 0 {
		return
	}
	fmt.Printf("\n| measure | before | target | this run |\n|---|---|---|---|\n")
	for i, t := range targets {
		now, ok := figures[i]
		if !ok {
			now = "not measured"
		}
		fmt.Printf("| %s | %s | %s | %s |\n", t.measure, t.before, t.goal, now)
	}
}
