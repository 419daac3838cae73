package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/getsops/sops/v3"
	"github.com/getsops/sops/v3/aes"
	sopsage "github.com/getsops/sops/v3/age"
	sopsconfig "github.com/getsops/sops/v3/config"
	"github.com/getsops/sops/v3/keyservice"
	"github.com/getsops/sops/v3/stores/dotenv"
	"github.com/getsops/sops/v3/stores/ini"
	sopsjson "github.com/getsops/sops/v3/stores/json"
	sopsyaml "github.com/getsops/sops/v3/stores/yaml"
	"google.golang.org/grpc"
)

// MaxEncryptedFileSize is the largest SOPS-encrypted file ferry decrypts,
// 5 MiB; a larger one fails the rendering.
const MaxEncryptedFileSize = 5 << 20

// Why a SOPS-encrypted file could not be decrypted. Each is a render
// error, so a verdict; the message names the file and the keys' public
// side, never key material or a decrypted value.
var (
	// errNoKeys: the environment has no decryption key at all.
	errNoKeys = errors.New("this environment has no decryption keys: set decryption.keyFiles or decryption.secretRef in ferry's config")
	// errWrongKey: none of the environment's keys opens the file.
	errWrongKey = errors.New("none of this environment's keys decrypts it")
	// errTampered: the file was changed after it was encrypted, so its
	// MAC does not match, or a value does not decrypt.
	errTampered = errors.New("SOPS integrity check failed: the file was changed after it was encrypted (edit it with sops, not by hand)")
	// errTooLarge: the file is over MaxEncryptedFileSize.
	errTooLarge = errors.New("encrypted file too large")
)

// sopsMarker is in every SOPS-encrypted file, whatever its format: the
// MAC and the values are written as ENC[AES256_GCM,…]. A file without it
// is not parsed for SOPS metadata at all.
var sopsMarker = []byte("ENC[AES256_GCM,")

// sopsStore is the part of a SOPS store ferry uses.
type sopsStore interface {
	LoadPlainFile(in []byte) (sops.TreeBranches, error)
	LoadEncryptedFile(in []byte) (sops.Tree, error)
	EmitPlainFile(in sops.TreeBranches) ([]byte, error)
}

// storeFor picks the SOPS store by the file's extension, as the sops
// command does: YAML, JSON, dotenv and INI files are encrypted value by
// value; any other file as a whole ("binary", a JSON envelope).
func storeFor(name string) (sopsStore, bool) {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return sopsyaml.NewStore(&sopsconfig.YAMLStoreConfig{}), false
	case ".json":
		return sopsjson.NewStore(&sopsconfig.JSONStoreConfig{}), false
	case ".env":
		return dotenv.NewStore(&sopsconfig.DotenvStoreConfig{}), false
	case ".ini":
		return ini.NewStore(&sopsconfig.INIStoreConfig{}), false
	}
	return sopsjson.NewBinaryStore(&sopsconfig.JSONBinaryStoreConfig{}), true
}

// decryptFile decrypts one file of the repository, name being its
// repository path, if it is encrypted with SOPS; a file that is not is
// returned as it is, with nil values. A file is SOPS-encrypted when its
// store finds SOPS metadata in it; a file that its store cannot even parse
// is not (the manifest parser then says what is wrong with it).
//
// values are the decrypted values, each with its path in the file and
// whether it is secret (see secretPath). The MAC is always checked.
func decryptFile(name string, data []byte, keys *Keys) (plain []byte, values []decryptedValue, err error) {
	if !bytes.Contains(data, sopsMarker) {
		return data, nil, nil
	}
	// SOPS has been seen to panic on hostile input; the file is not
	// trusted, so a panic fails this file, not the process.
	defer func() {
		if p := recover(); p != nil {
			plain, values, err = nil, nil, fmt.Errorf("%s: SOPS: cannot read the encrypted file (panic)", name)
		}
	}()
	// Checked before parsing: bounding the parse is the point.
	if len(data) > MaxEncryptedFileSize && bytes.Contains(data, []byte("sops")) {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes, over the limit of %d (5 MiB)", name, errTooLarge, len(data), MaxEncryptedFileSize)
	}
	store, binary := storeFor(name)
	if _, err := store.LoadPlainFile(data); err != nil {
		return data, nil, nil
	}
	tree, err := store.LoadEncryptedFile(data)
	if errors.Is(err, sops.MetadataNotFound) {
		return data, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: SOPS metadata: %w", name, err)
	}
	recipients := fileRecipients(tree.Metadata)
	if keys.Empty() {
		return nil, nil, fmt.Errorf("%s: encrypted with SOPS for %s: %w", name, recipients, errNoKeys)
	}
	dataKey, err := tree.Metadata.GetDataKeyWithKeyServices([]keyservice.KeyServiceClient{keyClient{keys}}, sops.DefaultDecryptionOrder)
	if err != nil {
		// SOPS's own message lists every key's attempt; it holds no
		// secret, but says less than this.
		return nil, nil, fmt.Errorf("%s: encrypted with SOPS for %s: %w (this environment has %s)", name, recipients, errWrongKey, strings.Join(keys.Public(), ", "))
	}
	encrypted := encryptedLeaves(tree.Branches)
	cipher := aes.NewCipher()
	// tree.Decrypt's and the cipher's errors may quote a value that was
	// written by hand where a ciphertext should be: they are not passed on.
	mac, err := tree.Decrypt(dataKey, cipher)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: a value does not decrypt", name, errTampered)
	}
	stored, err := cipher.Decrypt(tree.Metadata.MessageAuthenticationCode, dataKey, tree.Metadata.LastModified.Format(time.RFC3339))
	if err != nil || stored != mac {
		return nil, nil, fmt.Errorf("%s: %w: the MAC does not match", name, errTampered)
	}
	plain, err = store.EmitPlainFile(tree.Branches)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: SOPS: cannot write the decrypted file", name)
	}
	if binary {
		return plain, []decryptedValue{{path: "", value: string(plain), secret: true}}, nil
	}
	return plain, decryptedValues(tree.Branches, encrypted), nil
}

// fileRecipients lists the public side of the keys a file is encrypted
// for: age recipients, OpenPGP fingerprints ("pgp <fingerprint>"), and
// any other key SOPS knows by its type.
func fileRecipients(m sops.Metadata) string {
	var out []string
	for _, g := range m.KeyGroups {
		for _, k := range g {
			switch k.TypeToIdentifier() {
			case sopsage.KeyTypeIdentifier:
				out = append(out, k.ToString())
			default:
				out = append(out, k.TypeToIdentifier()+" "+k.ToString())
			}
		}
	}
	if len(out) == 0 {
		return "no key"
	}
	return strings.Join(out, ", ")
}

// keyClient is a SOPS key service that decrypts data keys with the given
// keys only: age identities and OpenPGP private keys, in memory. It never
// falls back to SOPS's defaults (SOPS_AGE_KEY*, ~/.config/sops/age, a GnuPG
// home, the gpg binary, cloud KMS credentials).
type keyClient struct{ keys *Keys }

// Encrypt refuses: ferry only decrypts.
func (c keyClient) Encrypt(context.Context, *keyservice.EncryptRequest, ...grpc.CallOption) (*keyservice.EncryptResponse, error) {
	return nil, errors.New("ferry does not encrypt")
}

// Decrypt decrypts one data key with the environment's keys.
func (c keyClient) Decrypt(_ context.Context, req *keyservice.DecryptRequest, _ ...grpc.CallOption) (*keyservice.DecryptResponse, error) {
	var plain []byte
	var err error
	switch k := req.GetKey().GetKeyType().(type) {
	case *keyservice.Key_AgeKey:
		plain, err = c.keys.decryptAge(k.AgeKey.GetRecipient(), req.GetCiphertext())
	case *keyservice.Key_PgpKey:
		plain, err = c.keys.decryptPGP(req.GetCiphertext())
	default:
		err = fmt.Errorf("%T keys are not supported: use age or OpenPGP", k)
	}
	if err != nil {
		return nil, err
	}
	return &keyservice.DecryptResponse{Plaintext: plain}, nil
}

// decryptAge decrypts a data key wrapped with age, through SOPS's own age
// master key given the environment's identities explicitly. With no
// identities it fails at once: SOPS would otherwise look for them in the
// process environment and the user's config directory.
func (k *Keys) decryptAge(recipient string, ciphertext []byte) ([]byte, error) {
	if len(k.age) == 0 {
		return nil, errors.New("no age identity")
	}
	mk := &sopsage.MasterKey{Recipient: recipient, EncryptedKey: string(ciphertext)}
	sopsage.ParsedIdentities(k.age).ApplyToMasterKey(mk)
	return mk.Decrypt()
}

// decryptPGP decrypts a data key wrapped with OpenPGP with the
// environment's private keys, in process: SOPS's own OpenPGP master key
// reads keyrings from a GnuPG home and falls back to running gpg.
func (k *Keys) decryptPGP(ciphertext []byte) ([]byte, error) {
	if len(k.pgp) == 0 {
		return nil, errors.New("no OpenPGP key")
	}
	block, err := armor.Decode(bytes.NewReader(ciphertext))
	if err != nil {
		return nil, fmt.Errorf("OpenPGP: %w", err)
	}
	noPrompt := func([]openpgp.Key, bool) ([]byte, error) {
		return nil, errors.New("no OpenPGP key of this environment decrypts it")
	}
	md, err := openpgp.ReadMessage(block.Body, k.pgp, noPrompt, nil)
	if err != nil {
		return nil, fmt.Errorf("OpenPGP: %w", err)
	}
	return io.ReadAll(md.UnverifiedBody)
}

// decryptedValue is one decrypted value of a file: its path in the file
// ("data.password"; "" for a whole binary file), and whether it is secret,
// that is whether it may appear only in Secrets' data and stringData.
type decryptedValue struct {
	path   string
	value  string
	secret bool
}

// isEncrypted reports whether an encrypted file's leaf is a SOPS
// ciphertext; the others were left in clear (encrypted_regex and its
// kin).
func isEncrypted(v any) bool {
	s, ok := v.(string)
	return ok && strings.HasPrefix(s, "ENC[")
}

// walkLeaves calls fn for every scalar of a SOPS tree, in order, with its
// path of keys and list indices; comments are skipped. The path is reused:
// fn must copy what it keeps.
func walkLeaves(v any, p []string, fn func(p []string, v any)) {
	switch v := v.(type) {
	case sops.TreeBranch:
		for _, it := range v {
			if _, ok := it.Key.(sops.Comment); ok {
				continue
			}
			walkLeaves(it.Value, append(p, fmt.Sprint(it.Key)), fn)
		}
	case []any:
		for i, e := range v {
			if _, ok := e.(sops.Comment); ok {
				continue
			}
			walkLeaves(e, append(p, strconv.Itoa(i)), fn)
		}
	case sops.Comment:
	default:
		fn(p, v)
	}
}

// encryptedLeaves records, per document and in walk order, which leaves of
// the encrypted tree are ciphertexts. Decryption keeps the tree's shape, so
// the same walk over the decrypted tree meets the same leaves in the same
// order.
func encryptedLeaves(branches sops.TreeBranches) [][]bool {
	out := make([][]bool, len(branches))
	for i, b := range branches {
		walkLeaves(b, nil, func(_ []string, v any) { out[i] = append(out[i], isEncrypted(v)) })
	}
	return out
}

// decryptedValues lists the values of the decrypted tree that were
// encrypted in the file.
func decryptedValues(branches sops.TreeBranches, encrypted [][]bool) []decryptedValue {
	var out []decryptedValue
	for i, b := range branches {
		kind, apiVersion := topString(b, "kind"), topString(b, "apiVersion")
		j := 0
		walkLeaves(b, nil, func(p []string, v any) {
			enc := i < len(encrypted) && j < len(encrypted[i]) && encrypted[i][j]
			j++
			if !enc || v == nil {
				return
			}
			out = append(out, decryptedValue{
				path:   strings.Join(p, "."),
				value:  scalarString(v),
				secret: secretPath(kind, apiVersion, p),
			})
		})
	}
	return out
}

// secretPath says whether an encrypted value at path p of a document is
// secret. In a Secret manifest only data and stringData are: names,
// labels and the type are encrypted too when the whole file is, and they
// are no secret. In another manifest everything but apiVersion, kind and
// metadata is, so that a ConfigMap encrypted by mistake fails the
// rendering instead of being shown in diffs. In a file that is no manifest
// (an input of a secretGenerator) every value is.
func secretPath(kind, apiVersion string, p []string) bool {
	if kind == "" || apiVersion == "" {
		return true
	}
	if len(p) < 1 {
		return false
	}
	if kind == "Secret" && apiVersion == "v1" {
		return len(p) >= 2 && (p[0] == "data" || p[0] == "stringData")
	}
	switch p[0] {
	case "apiVersion", "kind", "metadata":
		return false
	}
	return true
}

// topString returns the string value of a top-level key of a document, or
// "".
func topString(b sops.TreeBranch, key string) string {
	for _, it := range b {
		if k, ok := it.Key.(string); ok && k == key {
			s, _ := it.Value.(string)
			return s
		}
	}
	return ""
}

// scalarString writes a decrypted scalar as text.
func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return fmt.Sprint(v)
}
