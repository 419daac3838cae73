// Package sopstest encrypts files as `sops -e` does, in process, for the
// tests of ferry's SOPS decryption: the unit tests of render and the
// end-to-end tests. Keys are made by the tests; none is committed.
package sopstest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"path"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	sopsconfig "github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keys"
	"github.com/getsops/sops/v3/pgp"
	"github.com/getsops/sops/v3/shamir"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
)

// For says whom a file is encrypted for, and which values.
type For struct {
	Age []*age.X25519Identity
	PGP []*openpgp.Entity
	// EncryptedRegex is SOPS's encrypted_regex; empty encrypts every
	// value.
	EncryptedRegex string
	// UnencryptedSuffix and MACOnlyEncrypted are SOPS's
	// unencrypted_suffix and mac_only_encrypted.
	UnencryptedSuffix string
	MACOnlyEncrypted  bool
	// Threshold, if set, puts each key in a key group of its own and
	// splits the data key in Shamir shares, Threshold of which recover it.
	Threshold int
}

// AgeIdentity makes a new age identity.
func AgeIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// AgeKeyFile is an identity as age-keygen writes it.
func AgeKeyFile(id *age.X25519Identity) []byte {
	return []byte("# created: 2026-12-06T00:00:00Z\n# public key: " + id.Recipient().String() + "\n" + id.String() + "\n")
}

// PGPEntity makes a new OpenPGP key (EdDSA, with an ECDH subkey), without
// a passphrase.
func PGPEntity(t testing.TB) *openpgp.Entity {
	t.Helper()
	e, err := openpgp.NewEntity("ferry test", "", "test@ferry.dev", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// PGPFingerprint is an entity's fingerprint as SOPS writes it.
func PGPFingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// PGPKeyFile is an entity's key armored as `gpg --export-secret-keys
// --armor` (private) or `gpg --export --armor` writes it.
func PGPKeyFile(t testing.TB, e *openpgp.Entity, private bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	typ := openpgp.PublicKeyType
	if private {
		typ = openpgp.PrivateKeyType
	}
	w, err := armor.Encode(&buf, typ, nil)
	if err != nil {
		t.Fatal(err)
	}
	if private {
		err = e.SerializePrivate(w, nil)
	} else {
		err = e.Serialize(w)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// store is the SOPS store for a file name, as the sops command picks it.
type store interface {
	LoadPlainFile(in []byte) (sops.TreeBranches, error)
	EmitEncryptedFile(sops.Tree) ([]byte, error)
}

func storeFor(name string) store {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return sopsyaml.NewStore(&sopsconfig.YAMLStoreConfig{})
	case ".json":
		return sopsjson.NewStore(&sopsconfig.JSONStoreConfig{})
	case ".env":
		return dotenv.NewStore(&sopsconfig.DotenvStoreConfig{})
	case ".ini":
		return ini.NewStore(&sopsconfig.INIStoreConfig{})
	}
	return sopsjson.NewBinaryStore(&sopsconfig.JSONBinaryStoreConfig{})
}

// Encrypt encrypts plain, the content of a file called name, as `sops -e`
// does with SOPS's Go API: the store for the name's extension, a new data
// key wrapped for every recipient, every (or every matching) value
// encrypted, and the MAC. Each call makes new ciphertexts.
func Encrypt(t testing.TB, name, plain string, to For) string {
	t.Helper()
	st := storeFor(name)
	branches, err := st.LoadPlainFile([]byte(plain))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	dataKey := make([]byte, 32)
	if _, err := rand.Read(dataKey); err != nil {
		t.Fatal(err)
	}
	n := len(to.Age) + len(to.PGP)
	parts := [][]byte{}
	for range n {
		parts = append(parts, dataKey)
	}
	if to.Threshold > 0 {
		var err error
		if parts, err = shamir.Split(dataKey, n, to.Threshold); err != nil {
			t.Fatal(err)
		}
	}
	var masters []keys.MasterKey
	for i, id := range to.Age {
		mk, err := sopsage.MasterKeyFromRecipient(id.Recipient().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := mk.Encrypt(parts[i]); err != nil {
			t.Fatal(err)
		}
		masters = append(masters, mk)
	}
	for i, e := range to.PGP {
		// SOPS's own OpenPGP key reads public keys from a GnuPG home;
		// wrap the data key in process, as it does.
		var buf bytes.Buffer
		w, err := armor.Encode(&buf, "PGP MESSAGE", nil)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := openpgp.Encrypt(w, []*openpgp.Entity{e}, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pt.Write(parts[len(to.Age)+i]); err != nil {
			t.Fatal(err)
		}
		if err := pt.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		masters = append(masters, &pgp.MasterKey{Fingerprint: PGPFingerprint(e), EncryptedKey: buf.String(), CreationDate: time.Now().UTC()})
	}
	groups := []sops.KeyGroup{masters}
	if to.Threshold > 0 {
		groups = nil
		for _, k := range masters {
			groups = append(groups, sops.KeyGroup{k})
		}
	}
	tree := sops.Tree{Branches: branches, Metadata: sops.Metadata{
		KeyGroups: groups, ShamirThreshold: to.Threshold, EncryptedRegex: to.EncryptedRegex,
		UnencryptedSuffix: to.UnencryptedSuffix, MACOnlyEncrypted: to.MACOnlyEncrypted, Version: "3.13.3",
	}}
	if to.EncryptedRegex == "" && to.UnencryptedSuffix == "" {
		tree.Metadata.UnencryptedSuffix = sops.DefaultUnencryptedSuffix
	}
	cipher := aes.NewCipher()
	mac, err := tree.Encrypt(dataKey, cipher)
	if err != nil {
		t.Fatalf("encrypt %s: %v", name, err)
	}
	tree.Metadata.LastModified = time.Now().UTC()
	tree.Metadata.MessageAuthenticationCode, err = cipher.Encrypt(mac, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.EmitEncryptedFile(tree)
	if err != nil {
		t.Fatalf("emit %s: %v", name, err)
	}
	return string(out)
}
