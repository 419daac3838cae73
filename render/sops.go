package render

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/ProtonMail/go-crypto/openpgp"
	pgparmor "github.com/ProtonMail/go-crypto/openpgp/armor"
)

// SOPS files are decrypted here, by ferry itself, from the file format
// SOPS documents: https://github.com/getsops/sops (README, "Encryption
// Protocol"). ferry only decrypts, only with age and OpenPGP keys, and
// needs none of the SOPS command's key services, so it does not link the
// cloud KMS clients they bring. What it reads is checked as SOPS checks it:
// every value that the file's rules say is encrypted must decrypt, and the
// MAC over all values must match.

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

// sopsFile is an encrypted file as read by its format: its metadata, its
// values in SOPS's order, and how to write it out once decrypted.
type sopsFile struct {
	meta   sopsMeta
	leaves []*sopsLeaf
	// comments are the file's comments that may be encrypted: SOPS
	// encrypts comments too, but leaves them out of the MAC, so one that
	// does not decrypt is left as it is.
	comments []*sopsComment
	// emit writes the file out with the values set since it was read.
	emit func() ([]byte, error)
	// binary files are one value, the whole file: every byte is secret.
	binary bool
}

// sopsLeaf is one value of a file.
type sopsLeaf struct {
	doc int
	// path is the value's place for people: keys and list indices.
	path []string
	// keys are its map keys only: SOPS authenticates each value with
	// them (list indices are not part of it).
	keys []string
	// value is as read: a ciphertext, or a value left in clear (string,
	// int, float64, bool, time.Time, nil); once decrypted, the plaintext.
	value any
	// set writes the decrypted value into the file.
	set func(v any)
	// encrypted is set once the value was decrypted.
	encrypted bool
}

// sopsComment is one comment line that may be encrypted.
type sopsComment struct {
	keys []string
	text string
	set  func(string)
}

// decryptFile decrypts one file of the repository, name being its
// repository path, if it is encrypted with SOPS; a file that is not is
// returned as it is, with nil values. A file is SOPS-encrypted when its
// format, picked by its extension as the sops command picks it, finds SOPS
// metadata in it; a file its format cannot even parse is not (the
// manifest parser then says what is wrong with it).
//
// values are the decrypted values, each with its path in the file and
// whether it is secret (see secretPath). The MAC is always checked.
func decryptFile(name string, data []byte, keys *Keys) (plain []byte, values []decryptedValue, err error) {
	if !bytes.Contains(data, sopsMarker) {
		return data, nil, nil
	}
	// The file is not trusted: a panic reading it fails this file, not
	// the process.
	defer func() {
		if p := recover(); p != nil {
			plain, values, err = nil, nil, fmt.Errorf("%s: SOPS: cannot read the encrypted file (panic)", name)
		}
	}()
	// Checked before parsing: bounding the parse is the point.
	if len(data) > MaxEncryptedFileSize && bytes.Contains(data, []byte("sops")) {
		return nil, nil, fmt.Errorf("%s: %w: %d bytes, over the limit of %d (5 MiB)", name, errTooLarge, len(data), MaxEncryptedFileSize)
	}
	f, ok, err := readSOPS(name, data)
	if !ok {
		return data, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: SOPS metadata: %w", name, err)
	}
	recipients := f.meta.recipients()
	if keys.Empty() {
		return nil, nil, fmt.Errorf("%s: encrypted with SOPS for %s: %w", name, recipients, errNoKeys)
	}
	dataKey, err := f.meta.dataKey(keys)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: encrypted with SOPS for %s: %w (this environment has %s)", name, recipients, errWrongKey, strings.Join(keys.Public(), ", "))
	}
	// The errors of decryption may quote a value written by hand where a
	// ciphertext should be: they are not passed on.
	mac, err := f.decrypt(dataKey)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w: a value does not decrypt", name, errTampered)
	}
	stored, err := decryptValue(f.meta.mac, dataKey, f.meta.lastModified)
	if s, ok := stored.(string); err != nil || !ok || s != mac {
		return nil, nil, fmt.Errorf("%s: %w: the MAC does not match", name, errTampered)
	}
	for _, c := range f.comments {
		if strings.HasPrefix(c.text, "ENC[") {
			if v, err := decryptValue(c.text, dataKey, sopsAAD(c.keys)); err == nil {
				c.set(scalarString(v))
			}
		}
	}
	plain, err = f.emit()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: SOPS: cannot write the decrypted file", name)
	}
	if f.binary {
		return plain, []decryptedValue{{path: "", value: string(plain), secret: true}}, nil
	}
	return plain, f.decryptedValues(), nil
}

// readSOPS reads an encrypted file by its extension: YAML, JSON, dotenv
// and INI files are encrypted value by value; any other file as a whole
// (SOPS's "binary" format, a JSON envelope). ok is false when the file is
// no SOPS file of that format.
func readSOPS(name string, data []byte) (f *sopsFile, ok bool, err error) {
	switch strings.ToLower(path.Ext(name)) {
	case ".yaml", ".yml":
		return readYAMLSOPS(data)
	case ".json":
		return readJSONSOPS(data, false)
	case ".env":
		return readDotenvSOPS(data)
	case ".ini":
		return readINISOPS(data)
	}
	return readJSONSOPS(data, true)
}

// macOnlyEncryptedInit starts the MAC of a file with mac_only_encrypted,
// so that it never equals the MAC of the same values without it (SOPS's
// constant).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
	0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// decrypt decrypts every value the file's rules say is encrypted, sets it
// in the file, and returns the MAC of the values as SOPS computes it: the
// upper-case hex SHA-512 of each value's text, in order (of the encrypted
// ones only, with mac_only_encrypted).
func (f *sopsFile) decrypt(key []byte) (string, error) {
	h := sha512.New()
	if f.meta.macOnlyEncrypted {
		h.Write(macOnlyEncryptedInit)
	}
	for _, l := range f.leaves {
		if l.value == nil {
			continue // SOPS neither encrypts nor authenticates a null
		}
		encrypted := f.meta.encrypts(l.keys)
		v := l.value
		if encrypted {
			s, ok := v.(string)
			if !ok {
				return "", fmt.Errorf("%s: a %T where a ciphertext should be", strings.Join(l.path, "."), v)
			}
			if s != "" { // SOPS leaves an empty value empty
				var err error
				if v, err = decryptValue(s, key, sopsAAD(l.keys)); err != nil {
					return "", fmt.Errorf("%s: %w", strings.Join(l.path, "."), err)
				}
				l.set(v)
				l.value, l.encrypted = v, true
			}
		}
		if _, comment := v.(sopsCommentValue); comment || (f.meta.macOnlyEncrypted && !encrypted) {
			continue
		}
		b, err := macText(v)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	return fmt.Sprintf("%X", h.Sum(nil)), nil
}

// sopsAAD is the additional data SOPS authenticates a value with: its map
// keys, each followed by a colon.
func sopsAAD(keys []string) string { return strings.Join(keys, ":") + ":" }

// sopsCommentValue is a decrypted value of type comment.
type sopsCommentValue string

// macText is a value's text in the MAC, as SOPS writes it.
func macText(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case []byte:
		return v, nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		if v {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	case time.Time:
		return v.MarshalText()
	}
	return nil, fmt.Errorf("a value of type %T", v)
}

// encValue is SOPS's form of an encrypted value.
var encValue = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// decryptValue decrypts one ENC[AES256_GCM,…] value with AES-256-GCM and
// aad, and returns it as its type says. Errors never quote the value.
func decryptValue(value string, key []byte, aad string) (any, error) {
	m := encValue.FindStringSubmatch(value)
	if m == nil {
		return nil, errors.New("not a SOPS ciphertext")
	}
	var parts [3][]byte
	for i := range parts {
		var err error
		if parts[i], err = base64.StdEncoding.DecodeString(m[i+1]); err != nil {
			return nil, errors.New("a ciphertext that is not base64")
		}
	}
	data, iv, tag := parts[0], parts[1], parts[2]
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(iv) == 0 || len(tag) != 16 {
		return nil, errors.New("a ciphertext of the wrong shape")
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(iv))
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, iv, append(slices.Clip(data), tag...), []byte(aad))
	if err != nil {
		return nil, errors.New("a ciphertext that does not authenticate")
	}
	switch m[4] {
	case "str":
		return string(plain), nil
	case "bytes":
		return plain, nil
	case "int":
		return strconv.Atoi(string(plain))
	case "float":
		return strconv.ParseFloat(string(plain), 64)
	case "bool":
		return strconv.ParseBool(string(plain))
	case "time":
		var t time.Time
		err := t.UnmarshalText(plain)
		return t, err
	case "comment":
		return sopsCommentValue(plain), nil
	}
	return nil, errors.New("a ciphertext of unknown type")
}

// sopsMeta is what ferry reads of a file's SOPS metadata.
type sopsMeta struct {
	groups       [][]sopsKey
	threshold    int
	lastModified string // RFC 3339, as SOPS authenticates the MAC with it
	mac          string
	// macOnlyEncrypted: the MAC covers the encrypted values only.
	macOnlyEncrypted bool
	// The file's rule for which values are encrypted: one of these.
	unencryptedSuffix, encryptedSuffix string
	unencryptedRegex, encryptedRegex   *regexp.Regexp
}

// sopsKey is one master key of a key group: kind is "age", "pgp" or the
// name of a key service ferry has no keys for; id is its public side.
type sopsKey struct {
	kind, id, enc string
}

// recipients lists the public side of the keys a file is encrypted for:
// age recipients, OpenPGP fingerprints ("pgp <fingerprint>"), and any other
// key by its kind.
func (m sopsMeta) recipients() string {
	var out []string
	for _, g := range m.groups {
		for _, k := range g {
			if k.kind == "age" {
				out = append(out, k.id)
			} else {
				out = append(out, k.kind+" "+k.id)
			}
		}
	}
	if len(out) == 0 {
		return "no key"
	}
	return strings.Join(out, ", ")
}

// encrypts says whether the value at keys is encrypted, by the file's
// rule: a key with the unencrypted suffix (by default "_unencrypted") or
// matching the unencrypted regex leaves it in clear; with an encrypted
// suffix or regex, only a value under a key that has it is encrypted.
func (m sopsMeta) encrypts(keys []string) bool {
	switch {
	case m.unencryptedSuffix != "":
		return !slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, m.unencryptedSuffix) })
	case m.encryptedSuffix != "":
		return slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, m.encryptedSuffix) })
	case m.unencryptedRegex != nil:
		return !slices.ContainsFunc(keys, m.unencryptedRegex.MatchString)
	case m.encryptedRegex != nil:
		return slices.ContainsFunc(keys, m.encryptedRegex.MatchString)
	}
	return true
}

// dataKey recovers the file's data key with keys: from the one key group,
// or, with several, from the Shamir shares of at least threshold of them.
func (m sopsMeta) dataKey(keys *Keys) ([]byte, error) {
	var parts [][]byte
	for _, g := range m.groups {
		if part, err := groupKey(g, keys); err == nil {
			parts = append(parts, part)
		}
	}
	switch {
	case len(m.groups) == 1 && len(parts) == 1:
		return parts[0], nil
	case len(m.groups) > 1 && len(parts) >= max(m.threshold, 2):
		return shamirCombine(parts)
	}
	return nil, errors.New("no key group decrypts")
}

// groupKey decrypts a key group's data key (or share) with the first key
// of the group that keys open: age keys first, then OpenPGP.
func groupKey(g []sopsKey, keys *Keys) ([]byte, error) {
	for _, kind := range []string{"age", "pgp"} {
		for _, k := range g {
			if k.kind != kind {
				continue
			}
			var key []byte
			var err error
			if kind == "age" {
				key, err = keys.decryptAge(k.enc)
			} else {
				key, err = keys.decryptPGP(k.enc)
			}
			if err == nil {
				return key, nil
			}
		}
	}
	return nil, errors.New("no key of the group decrypts")
}

// maxDataKey bounds what a master key may decrypt to: a data key is 32
// bytes, a Shamir share one more.
const maxDataKey = 1 << 10

// decryptAge decrypts a data key wrapped with age (armored) with the
// environment's identities only. With none it fails at once.
func (k *Keys) decryptAge(enc string) ([]byte, error) {
	if len(k.age) == 0 {
		return nil, errors.New("no age identity")
	}
	r, err := age.Decrypt(armor.NewReader(strings.NewReader(enc)), k.age...)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(r, maxDataKey))
}

// decryptPGP decrypts a data key wrapped with OpenPGP with the
// environment's private keys, in process: never a GnuPG home, never gpg.
func (k *Keys) decryptPGP(enc string) ([]byte, error) {
	if len(k.pgp) == 0 {
		return nil, errors.New("no OpenPGP key")
	}
	block, err := pgparmor.Decode(strings.NewReader(enc))
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
	return io.ReadAll(io.LimitReader(md.UnverifiedBody, maxDataKey))
}

// shamirCombine recovers a secret from Shamir shares as SOPS splits it:
// each share is the secret's bytes evaluated at one point of a random
// polynomial over GF(2^8), followed by the point; the secret is the
// polynomials' values at zero (Lagrange interpolation).
func shamirCombine(parts [][]byte) ([]byte, error) {
	n := len(parts[0])
	if n < 2 {
		return nil, errors.New("Shamir shares are too short")
	}
	xs := make([]byte, len(parts))
	for i, p := range parts {
		if len(p) != n {
			return nil, errors.New("Shamir shares of different lengths")
		}
		xs[i] = p[n-1]
		if slices.Contains(xs[:i], xs[i]) {
			return nil, errors.New("the same Shamir share twice")
		}
	}
	secret := make([]byte, n-1)
	for b := range secret {
		var v byte
		for i, p := range parts {
			basis := byte(1)
			for j := range parts {
				if i != j {
					basis = gfMul(basis, gfMul(xs[j], gfInv(xs[i]^xs[j])))
				}
			}
			v ^= gfMul(p[b], basis)
		}
		secret[b] = v
	}
	return secret, nil
}

// gfMul multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
func gfMul(a, b byte) byte {
	var p byte
	for b > 0 {
		if b&1 == 1 {
			p ^= a
		}
		hi := a & 0x80
		a <<= 1
		if hi != 0 {
			a ^= 0x1b
		}
		b >>= 1
	}
	return p
}

// gfInv is a's multiplicative inverse in GF(2^8): a^254.
func gfInv(a byte) byte {
	r := byte(1)
	for range 254 {
		r = gfMul(r, a)
	}
	return r
}

// decryptedValue is one decrypted value of a file: its path in the file
// ("data.password"; "" for a whole binary file), and whether it is secret,
// that is whether it may appear only in Secrets' data and stringData.
type decryptedValue struct {
	path   string
	value  string
	secret bool
}

// decryptedValues lists the values of the file that were encrypted.
func (f *sopsFile) decryptedValues() []decryptedValue {
	type manifest struct{ kind, apiVersion string }
	docs := map[int]manifest{}
	for _, l := range f.leaves {
		s, ok := l.value.(string)
		if !ok || len(l.path) != 1 {
			continue
		}
		d := docs[l.doc]
		switch l.path[0] {
		case "kind":
			d.kind = s
		case "apiVersion":
			d.apiVersion = s
		}
		docs[l.doc] = d
	}
	var out []decryptedValue
	for _, l := range f.leaves {
		if !l.encrypted {
			continue
		}
		d := docs[l.doc]
		out = append(out, decryptedValue{path: strings.Join(l.path, "."), value: scalarString(l.value), secret: secretPath(d.kind, d.apiVersion, l.path)})
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

// scalarString writes a decrypted scalar as text.
func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case sopsCommentValue:
		return string(v)
	}
	return fmt.Sprint(v)
}
