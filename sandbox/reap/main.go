// Command reap stops and removes the test clusters and forges whose owning
// process has exited (a test run that was killed). Live ones are left alone.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"ferry.dev/ferry/sandbox"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reaped, err := sandbox.Reap(ctx)
	for _, name := range reaped {
		fmt.Println("reaped", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reap:", err)
		os.Exit(1)
	}
}
