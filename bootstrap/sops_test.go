package bootstrap

import (
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/fluxcd/pkg/ssa"
)

func TestValidateSOPSAgeKey(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := []byte("# created: 2026-12-06T00:00:00Z\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")

	o := validOptions()
	o.SOPSAgeKey = keyFile
	if err := o.validate(); err != nil {
		t.Fatalf("validate with an age key: %v", err)
	}
	keys, err := sopsKeys(keyFile)
	if err != nil || strings.Join(keys.Public(), ",") != id.Recipient().String() {
		t.Fatalf("sopsKeys = %v, %v; want the key of %s", keys, err, id.Recipient())
	}

	for _, tt := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"not an age key", func(o *Options) { o.SOPSAgeKey = []byte(id.String()[:30] + "\n") }, "--sops-age-key: decryption key identity.agekey"},
		{"an OpenPGP key", func(o *Options) {
			o.SOPSAgeKey = []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n" + id.String() + "\n")
		}, "--sops-age-key"},
		{"bad Secret name", func(o *Options) { o.SOPSAgeKey, o.SOPSKeysSecret = keyFile, "SOPS Keys" }, `--sops-secret "SOPS Keys"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := validOptions()
			tt.edit(&o)
			err := o.validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") || strings.Contains(err.Error(), id.String()[16:40]) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

func TestWithDefaultsSOPSKeysSecret(t *testing.T) {
	if got := withDefaults(Options{}).SOPSKeysSecret; got != DefaultSOPSKeysSecret {
		t.Errorf("default SOPS key Secret = %q, want %q", got, DefaultSOPSKeysSecret)
	}
	if SOPSAgeKeyName != "identity.agekey" {
		t.Errorf("SOPSAgeKeyName = %q", SOPSAgeKeyName)
	}
}

func TestResultChangedBySOPSKeys(t *testing.T) {
	r := &Result{Secret: secretUnchanged, SOPSKeys: secretUnchanged}
	r.Changes = nil
	if !r.Changed() {
		t.Error("no change set reads as unchanged")
	}
	for _, tt := range []struct {
		sops string
		want bool
	}{{"", false}, {secretUnchanged, false}, {secretCreated, true}, {secretUpdated, true}} {
		r := &Result{Secret: secretUnchanged, SOPSKeys: tt.sops}
		r.Changes = ssa.NewChangeSet()
		if got := r.Changed(); got != tt.want {
			t.Errorf("SOPSKeys %q: Changed() = %v, want %v", tt.sops, got, tt.want)
		}
	}
}
