package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBinaryLinksNoKeyServices: ferry decrypts SOPS files with age and
// OpenPGP keys itself (render/sops.go). The sops module, whose key
// services bring every cloud KMS client, is for the tests to encrypt with;
// the binary must not link it, nor the clients it brings.
func TestBinaryLinksNoKeyServices(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "list", "-deps", "ferry.dev/ferry/cmd/ferry").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/getsops/sops", "github.com/aws/aws-sdk-go", "cloud.google.com/go/kms",
			"github.com/Azure/azure-sdk-for-go", "github.com/hashicorp/vault", "google.golang.org/grpc"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("the ferry binary links %s", pkg)
			}
		}
	}
}
