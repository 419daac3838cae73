package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
)

// Suffixes of key files, in the config's decryption.keyFiles and in the keys
// of the Secret named by decryption.secretRef.
const (
	// AgeKeySuffix ends a file of age identities, one per line, as
	// age-keygen writes them.
	AgeKeySuffix = ".agekey"
	// PGPKeySuffix ends a file of ASCII-armored OpenPGP private keys, as
	// `gpg --export-secret-keys --armor` writes them, without a passphrase.
	PGPKeySuffix = ".asc"
)

// KeyFile is one file of private keys: Name (a path, or a key of a Secret)
// says what it holds by its suffix, AgeKeySuffix or PGPKeySuffix, and
// names it in errors; Data is its content.
type KeyFile struct {
	Name string
	Data []byte
}

// Keys are the private keys one environment decrypts its SOPS-encrypted
// files with, and nothing else: ferry never looks for keys in its process
// environment, in ~/.config/sops or in a GnuPG home, and never runs gpg.
// A nil *Keys holds no key. Keys are safe for concurrent use; they are
// never changed once parsed.
type Keys struct {
	age        []age.Identity
	recipients []string // the age identities' public keys, in order
	pgp        openpgp.EntityList
	pgpFprs    []string // the OpenPGP keys' fingerprints, upper-case hex
	id         string
}

// ParseKeys parses key files. An error names the file and says what is
// wrong with it, never quoting its content. Files of unknown suffix, with no
// key, or with an OpenPGP key that is public only or protected by a
// passphrase, are refused.
func ParseKeys(files ...KeyFile) (*Keys, error) {
	k := &Keys{}
	var errs []error
	for _, f := range files {
		var err error
		switch strings.ToLower(path.Ext(f.Name)) {
		case AgeKeySuffix:
			err = k.addAge(f.Data)
		case PGPKeySuffix:
			err = k.addPGP(f.Data)
		default:
			err = fmt.Errorf("unknown kind of key: name it *%s (age identities) or *%s (armored OpenPGP private keys)", AgeKeySuffix, PGPKeySuffix)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("decryption key %s: %w", f.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	k.id = k.fingerprint()
	return k, nil
}

// addAge adds the age identities of one file.
func (k *Keys) addAge(data []byte) error {
	// age.ParseIdentities never quotes a line in its errors: it may hold a
	// private key.
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return err
	}
	for _, id := range ids {
		switch id := id.(type) {
		case *age.X25519Identity:
			k.recipients = append(k.recipients, id.Recipient().String())
		case *age.HybridIdentity:
			k.recipients = append(k.recipients, id.Recipient().String())
		default:
			return fmt.Errorf("unsupported age identity type %T", id)
		}
		k.age = append(k.age, id)
	}
	return nil
}

// addPGP adds the OpenPGP private keys of one armored file.
func (k *Keys) addPGP(data []byte) error {
	list, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not an armored OpenPGP key: %w", err)
	}
	for _, e := range list {
		fpr := pgpFingerprint(e)
		if e.PrivateKey == nil {
			return fmt.Errorf("OpenPGP key %s is a public key; export the private key (gpg --export-secret-keys --armor %s)", fpr, fpr)
		}
		if e.PrivateKey.Encrypted {
			return fmt.Errorf("OpenPGP key %s is protected by a passphrase, which ferry cannot type; export a copy without one", fpr)
		}
		for _, sk := range e.Subkeys {
			if sk.PrivateKey != nil && sk.PrivateKey.Encrypted {
				return fmt.Errorf("OpenPGP key %s has a subkey protected by a passphrase, which ferry cannot type; export a copy without one", fpr)
			}
		}
		k.pgp = append(k.pgp, e)
		k.pgpFprs = append(k.pgpFprs, fpr)
	}
	if len(list) == 0 {
		return errors.New("no OpenPGP key in it")
	}
	return nil
}

// pgpFingerprint is an entity's primary key fingerprint, as SOPS writes it.
func pgpFingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// fingerprint identifies the key set by its public parts only, for the
// render cache: two environments with different keys never share a
// rendering.
func (k *Keys) fingerprint() string {
	pub := slices.Concat(k.recipients, k.pgpFprs)
	slices.Sort(pub)
	sum := sha256.Sum256([]byte(strings.Join(pub, "\n")))
	return hex.EncodeToString(sum[:8])
}

// Empty reports whether k holds no key.
func (k *Keys) Empty() bool { return k == nil || len(k.age)+len(k.pgp) == 0 }

// Public lists the public side of the keys, for messages and logs: age
// recipients (age1…) and OpenPGP fingerprints.
func (k *Keys) Public() []string {
	if k == nil {
		return nil
	}
	return slices.Concat(k.recipients, k.pgpFprs)
}

// cacheID is what the render cache keys on; "" for no keys.
func (k *Keys) cacheID() string {
	if k.Empty() {
		return ""
	}
	return k.id
}
