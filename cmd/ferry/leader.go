package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Leader election timing: a standby takes over at most leaseDuration after
// the leader last renewed; the leader gives up when it could not renew for
// renewDeadline, which leaves leaseDuration-renewDeadline for its work to
// stop before anyone else may start.
const (
	leaderLease   = "ferry-leader"
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// errLostLease reports that the leader could not renew its lease in time;
// another replica may lead now. The process should exit: a restart joins
// the election again as a standby.
var errLostLease = errors.New("lost the leader lease")

// runLeader takes part in the election of the Lease ferry-leader in
// namespace as identity (the pod's name) and calls run while it leads. Only
// one process at a time runs: run's context ends when leadership is lost or
// ctx ends, and the lease is released only after run has returned, so a
// standby starts no earlier than that (TestLeader in e2e pins it).
//
// runLeader returns nil when ctx ends or run returns of its own accord
// (releasing the lease at once, so a standby takes over within one retry
// period), and an error wrapping errLostLease when leadership was lost while
// ctx lasted. run must return soon after its context ends.
func runLeader(ctx context.Context, cfg *rest.Config, namespace, identity string, run func(ctx context.Context)) error {
	if identity == "" {
		return errors.New("leader election: empty identity; set the pod name")
	}
	clients, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: leaderLease},
		Client:     clients.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	// The election has its own context, ended by us only: after run has
	// returned, or when ctx ends before this process leads. client-go
	// releases the lease as soon as the election's context ends, without
	// waiting for run; ending it ourselves after run keeps two leaders from
	// overlapping.
	election, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	var (
		mu       sync.Mutex
		leading  bool // run was started
		returned bool // the election is over; run must not start any more
		lost     bool
		ran      = make(chan struct{})
	)
	defer context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !leading {
			stopElection()
		}
	})()
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            leaderLease,
		LeaseDuration:   leaseDuration,
		RenewDeadline:   renewDeadline,
		RetryPeriod:     retryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leadCtx context.Context) {
				// client-go starts this in a goroutine; it may come after
				// the election ended (ctx ended just as the lease was won).
				mu.Lock()
				if returned {
					mu.Unlock()
					return
				}
				leading = true
				mu.Unlock()
				defer close(ran)
				defer stopElection()
				runCtx, cancel := context.WithCancel(leadCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				run(runCtx)
				mu.Lock()
				lost = leadCtx.Err() != nil && ctx.Err() == nil
				mu.Unlock()
			},
			OnStoppedLeading: func() {},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	elector.Run(election)
	mu.Lock()
	returned = true
	wasLeading := leading
	mu.Unlock()
	if wasLeading {
		<-ran // client-go returns without waiting for run
	}
	mu.Lock()
	defer mu.Unlock()
	if lost {
		return fmt.Errorf("lease %s/%s as %s: %w", namespace, leaderLease, identity, errLostLease)
	}
	return nil
}
