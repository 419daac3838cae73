package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Suffixes of decryption key files and of the keys of a decryption Secret:
// the suffix says what a file holds.
const (
	// AgeKeySuffix ends a file of age identities, as age-keygen writes.
	AgeKeySuffix = ".agekey"
	// PGPKeySuffix ends a file of ASCII-armored OpenPGP private keys
	// without a passphrase.
	PGPKeySuffix = ".asc"
)

// Decryption says which private keys open an environment's SOPS-encrypted
// files. Keys are per environment: a file encrypted only for production's
// key does not render in staging. Both sources may be given; their keys
// add up.
type Decryption struct {
	// KeyFiles are files of private keys, each named *.agekey (age
	// identities) or *.asc (an armored OpenPGP private key).
	KeyFiles []string `yaml:"keyFiles"`
	// SecretRef names a Secret in ferry's namespace whose keys ending in
	// .agekey or .asc hold private keys; its other keys are refused.
	SecretRef *SecretRef `yaml:"secretRef"`
}

// SecretRef names a Secret in ferry's own namespace.
type SecretRef struct {
	// Name is the Secret's name.
	Name string `yaml:"name"`
}

func (d *Decryption) validate(at string, p *problems) {
	if d == nil {
		return
	}
	if len(d.KeyFiles) == 0 && d.SecretRef == nil {
		p.add(at, "gives no key: set keyFiles or secretRef (or remove decryption)")
	}
	for i, f := range d.KeyFiles {
		path := fmt.Sprintf("%s.keyFiles[%d]", at, i)
		switch ext := strings.ToLower(filepath.Ext(f)); {
		case f == "":
			p.add(path, "empty: the path of a key file")
		case ext != AgeKeySuffix && ext != PGPKeySuffix:
			p.add(path, "%q: name it *%s (age identities) or *%s (an armored OpenPGP private key)", f, AgeKeySuffix, PGPKeySuffix)
		}
	}
	if d.SecretRef != nil {
		if d.SecretRef.Name == "" {
			p.add(at+".secretRef.name", "required: the Secret in ferry's namespace holding the keys, such as sops-keys")
		} else if msgs := validation.IsDNS1123Subdomain(d.SecretRef.Name); len(msgs) > 0 {
			p.add(at+".secretRef.name", "%q is not a Secret name: %s", d.SecretRef.Name, strings.Join(msgs, "; "))
		}
	}
}
