package bench

import (
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var deleteOpts = metav1.DeleteOptions{}

func clientConfig(kubeconfig string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, -1
	return cfg, nil
}

// fataler is the little of testing.TB that gitTree needs.
type fataler interface{ Fatal(args ...any) }

// exitOnFatal is a fataler for the child process, which has no testing.TB.
type exitOnFatal struct{}

func (exitOnFatal) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(1)
}
