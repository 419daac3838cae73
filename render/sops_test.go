package render

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/ProtonMail/go-crypto/openpgp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"ferry.dev/ferry/internal/sopstest"
)

// The keys of these tests are made by the tests; no key material is
// committed.

func newAgeIdentity(t *testing.T) *age.X25519Identity { return sopstest.AgeIdentity(t) }

func newPGPEntity(t *testing.T) *openpgp.Entity { return sopstest.PGPEntity(t) }

// ageKeyFile is an identity as age-keygen writes it.
func ageKeyFile(name string, id *age.X25519Identity) KeyFile {
	return KeyFile{Name: name, Data: sopstest.AgeKeyFile(id)}
}

// pgpKeyFile is an entity's key as `gpg --export-secret-keys --armor`
// (private) or `gpg --export --armor` writes it.
func pgpKeyFile(t *testing.T, name string, e *openpgp.Entity, private bool) KeyFile {
	return KeyFile{Name: name, Data: sopstest.PGPKeyFile(t, e, private)}
}

func mustKeys(t *testing.T, files ...KeyFile) *Keys {
	t.Helper()
	k, err := ParseKeys(files...)
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return k
}

// encryptFor says whom a test file is encrypted for, and how.
type encryptFor = sopstest.For

// sopsEncrypt encrypts plain as `sops -e` does, in process.
func sopsEncrypt(t testing.TB, name, plain string, to encryptFor) string {
	t.Helper()
	out := sopstest.Encrypt(t, name, plain, to)
	if strings.Contains(out, "hunter") {
		t.Fatalf("%s: plaintext left in the encrypted file:\n%s", name, out)
	}
	return out
}

const (
	dbPassword = "hunter2-staging-db-password"
	apiToken   = "hunter3-api-token-0123456789"
	prodSecret = "hunter4-production-only-value"
)

// tlsKey is binary content: a secretGenerator file that is no text.
var tlsKey = "\x00\xffhunter5-binary\x01\x02" + strings.Repeat("\xfe", 40)

const dbSecret = `apiVersion: v1
kind: Secret
metadata:
  name: db
type: Opaque
stringData:
  password: ` + dbPassword + `
  user: app
`

// secretRepo is a repository of two environments whose secrets are
// encrypted for their own keys: staging's with age, production's with
// OpenPGP.
type secretRepo struct {
	staging, production *age.X25519Identity
	prodPGP             *openpgp.Entity
	files               files
}

func newSecretRepo(t *testing.T) *secretRepo {
	t.Helper()
	r := &secretRepo{staging: newAgeIdentity(t), production: newAgeIdentity(t), prodPGP: newPGPEntity(t)}
	stg := encryptFor{Age: []*age.X25519Identity{r.staging}}
	prod := encryptFor{PGP: []*openpgp.Entity{r.prodPGP}, EncryptedRegex: "^(data|stringData)$"}
	r.files = files{
		".sops.yaml":              "creation_rules:\n  - path_regex: envs/staging/.*\n    age: " + r.staging.Recipient().String() + "\n",
		"base/kustomization.yaml": "resources: [config.yaml]\n",
		"base/config.yaml":        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LOG_LEVEL: info\n",
		"envs/staging/kustomization.yaml": `namespace: staging
labels: [{pairs: {team: payments}}]
resources: [../../base, db.enc.yaml]
secretGenerator:
  - name: app-env
    envs: [app.enc.env]
  - name: tls
    files: [tls.key=tls.key.enc]
generatorOptions: {disableNameSuffixHash: true}
`,
		"envs/staging/db.enc.yaml":           sopsEncrypt(t, "db.enc.yaml", dbSecret, stg),
		"envs/staging/app.enc.env":           sopsEncrypt(t, "app.enc.env", "API_TOKEN="+apiToken+"\nMODE=live\n", stg),
		"envs/staging/tls.key.enc":           sopsEncrypt(t, "tls.key.enc", tlsKey, stg),
		"envs/production/kustomization.yaml": "namespace: production\nresources: [../../base, secret.enc.json]\n",
		"envs/production/secret.enc.json": sopsEncrypt(t, "secret.enc.json",
			`{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prod"}, "data": {"token": "`+base64.StdEncoding.EncodeToString([]byte(prodSecret))+`"}}`, prod),
	}
	return r
}

func (r *secretRepo) stagingKeys(t *testing.T) *Keys {
	return mustKeys(t, ageKeyFile("staging.agekey", r.staging))
}

func (r *secretRepo) productionKeys(t *testing.T) *Keys {
	return mustKeys(t, pgpKeyFile(t, "production.asc", r.prodPGP, true))
}

func renderKeys(t *testing.T, fs files, dir string, keys *Keys) (*Result, error) {
	t.Helper()
	return NewRenderer(DefaultOptions()).RenderWith(t.Context(), commitFiles(t, fs), dir, Input{Keys: keys})
}

func secretData(t *testing.T, o *unstructured.Unstructured, key string) string {
	t.Helper()
	v, found, err := unstructured.NestedString(o.Object, "data", key)
	if err != nil || !found {
		t.Fatalf("%s has no data.%s: %v", o.GetName(), key, o.Object)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("%s data.%s: %v", o.GetName(), key, err)
	}
	return string(b)
}

// noSecrets fails when s holds a test secret, in clear or base64, or key
// material.
func noSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range []string{dbPassword, apiToken, prodSecret, "hunter5-binary", "AGE-SECRET-KEY", "PRIVATE KEY"} {
		if strings.Contains(s, v) || strings.Contains(s, base64.StdEncoding.EncodeToString([]byte(v))) {
			t.Errorf("%s holds %q: %s", what, v, s)
		}
	}
}

func TestRenderDecryptsWithTheEnvironmentsKeys(t *testing.T) {
	r := newSecretRepo(t)
	res, err := renderKeys(t, r.files, "envs/staging", r.stagingKeys(t))
	if err != nil {
		t.Fatalf("render staging: %v", err)
	}
	// Whole-file encrypted YAML, decrypted before kustomize set the
	// namespace and labels (which would break its MAC afterwards).
	db := find(t, res.Objects, "Secret", "db")
	if db.GetNamespace() != "staging" || db.GetLabels()["team"] != "payments" {
		t.Errorf("db Secret not transformed by kustomize: %v", db.Object)
	}
	if got, _, _ := unstructured.NestedString(db.Object, "stringData", "password"); got != dbPassword {
		t.Errorf("db stringData.password = %q, want the plaintext", got)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(db.Object, "sops"); found {
		t.Error("the sops metadata was left in the Secret")
	}
	// A dotenv file for a secretGenerator.
	env := find(t, res.Objects, "Secret", "app-env")
	if got := secretData(t, env, "API_TOKEN"); got != apiToken {
		t.Errorf("app-env API_TOKEN = %q", got)
	}
	if got := secretData(t, env, "MODE"); got != "live" {
		t.Errorf("app-env MODE = %q", got)
	}
	// A binary file for a secretGenerator.
	if got := secretData(t, find(t, res.Objects, "Secret", "tls"), "tls.key"); got != tlsKey {
		t.Errorf("tls tls.key = %q, want the binary plaintext", got)
	}

	// JSON with encrypted_regex, OpenPGP, in the same repository.
	res, err = renderKeys(t, r.files, "envs/production", r.productionKeys(t))
	if err != nil {
		t.Fatalf("render production: %v", err)
	}
	prod := find(t, res.Objects, "Secret", "prod")
	if got := secretData(t, prod, "token"); got != prodSecret {
		t.Errorf("prod token = %q", got)
	}
	if prod.GetNamespace() != "production" {
		t.Errorf("prod namespace = %q", prod.GetNamespace())
	}
}

func TestRenderDecryptsPlainDirectories(t *testing.T) {
	id := newAgeIdentity(t)
	fs := files{
		"app/.sops.yaml":  "creation_rules:\n  - age: " + id.Recipient().String() + "\n",
		"app/db.enc.yaml": sopsEncrypt(t, "db.enc.yaml", dbSecret, encryptFor{Age: []*age.X25519Identity{id}, EncryptedRegex: "^(data|stringData)$"}),
		"app/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
	}
	res, err := renderKeys(t, fs, "app", mustKeys(t, ageKeyFile("k.agekey", id)))
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	if got := ids(res.Objects); !equal(got, []string{"ConfigMap /cm", "Secret /db"}) {
		t.Errorf("objects = %v", got)
	}
	db := find(t, res.Objects, "Secret", "db")
	if got, _, _ := unstructured.NestedString(db.Object, "stringData", "password"); got != dbPassword {
		t.Errorf("password = %q", got)
	}
}

func TestRenderDecryptionErrors(t *testing.T) {
	r := newSecretRepo(t)
	stagingRecipient := r.staging.Recipient().String()
	prodFpr := sopstest.PGPFingerprint(r.prodPGP)

	tampered := with(r.files, files{
		// metadata.name is in clear (encrypted_regex) but under the MAC.
		"envs/production/secret.enc.json": strings.Replace(r.files["envs/production/secret.enc.json"], `"name": "prod"`, `"name": "prod2"`, 1),
	})
	var flipped string
	{
		s := r.files["envs/staging/db.enc.yaml"]
		i := strings.Index(s, "ENC[AES256_GCM,data:") + len("ENC[AES256_GCM,data:")
		c := byte('A')
		if s[i] == 'A' {
			c = 'B'
		}
		flipped = s[:i] + string(c) + s[i+1:]
	}
	big := r.files["envs/staging/db.enc.yaml"] + "# " + strings.Repeat("x", MaxEncryptedFileSize) + "\n"

	tests := []struct {
		name string
		fs   files
		dir  string
		keys *Keys
		is   error
		want []string
	}{
		{"staging's key cannot decrypt production's file", r.files, "envs/production", r.stagingKeys(t), errWrongKey,
			[]string{"envs/production/secret.enc.json", "pgp " + prodFpr, "this environment has " + stagingRecipient}},
		{"production's key cannot decrypt staging's file", r.files, "envs/staging", r.productionKeys(t), errWrongKey,
			[]string{"envs/staging/db.enc.yaml", stagingRecipient, prodFpr}},
		{"no keys", r.files, "envs/staging", nil, errNoKeys,
			[]string{"envs/staging/db.enc.yaml", stagingRecipient, "decryption.secretRef"}},
		{"a key file without keys", r.files, "envs/staging", mustKeys(t), errNoKeys, []string{"envs/staging/db.enc.yaml"}},
		{"tampered MAC", tampered, "envs/production", r.productionKeys(t), errTampered,
			[]string{"envs/production/secret.enc.json", "MAC"}},
		{"tampered ciphertext", with(r.files, files{"envs/staging/db.enc.yaml": flipped}), "envs/staging", r.stagingKeys(t), errTampered,
			[]string{"envs/staging/db.enc.yaml"}},
		// The rendering's own per-file limit (5 MiB by default) refuses the
		// file before it is decrypted; errTooLarge stands behind it for
		// renderers whose limit is larger.
		{"over 5 MiB", with(r.files, files{"envs/staging/db.enc.yaml": big}), "envs/staging", r.stagingKeys(t), ErrLimit,
			[]string{"envs/staging/db.enc.yaml", "5 MiB"}},
		{"a generator's dotenv file with the wrong key", with(r.files, files{
			"envs/staging/app.enc.env": sopsEncrypt(t, "app.enc.env", "API_TOKEN="+apiToken+"\n", encryptFor{Age: []*age.X25519Identity{r.production}}),
		}), "envs/staging", r.stagingKeys(t), errWrongKey, []string{"envs/staging/app.enc.env", r.production.Recipient().String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := renderKeys(t, tt.fs, tt.dir, tt.keys)
			if err == nil {
				t.Fatalf("render = %v, want an error", ids(res.Objects))
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.is) {
				t.Errorf("error is not %v", tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %q", w)
				}
			}
			noSecrets(t, "error", err.Error())
		})
	}
}

// TestRenderReadsNoKeysFromTheProcess pins that decryption uses only the
// keys given: SOPS itself would take them from SOPS_AGE_KEY*, from
// ~/.config/sops/age/keys.txt, and from a GnuPG home.
func TestRenderReadsNoKeysFromTheProcess(t *testing.T) {
	r := newSecretRepo(t)
	home := t.TempDir()
	keysTxt := filepath.Join(home, ".config", "sops", "age", "keys.txt")
	if err := os.MkdirAll(filepath.Dir(keysTxt), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keysTxt, []byte(r.staging.String()+"\n"+r.production.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("SOPS_AGE_KEY", r.staging.String())
	t.Setenv("SOPS_AGE_KEY_FILE", keysTxt)
	t.Setenv("GNUPGHOME", home)

	if _, err := renderKeys(t, r.files, "envs/staging", nil); !errors.Is(err, errNoKeys) {
		t.Errorf("render with no keys = %v, want %v", err, errNoKeys)
	}
	// Keys of another environment: the process's keys are not tried either.
	if _, err := renderKeys(t, r.files, "envs/staging", r.productionKeys(t)); !errors.Is(err, errWrongKey) {
		t.Errorf("render with production's keys = %v, want %v", err, errWrongKey)
	}
}

// TestRenderDigestIgnoresReencryption pins that the digest is of the
// plaintext: encrypting the same content again (new data key, new
// ciphertexts, new MAC) is no change, a new value is.
func TestRenderDigestIgnoresReencryption(t *testing.T) {
	r := newSecretRepo(t)
	stg := encryptFor{Age: []*age.X25519Identity{r.staging}}
	again := with(r.files, files{
		"envs/staging/db.enc.yaml": sopsEncrypt(t, "db.enc.yaml", dbSecret, stg),
		"envs/staging/app.enc.env": sopsEncrypt(t, "app.enc.env", "API_TOKEN="+apiToken+"\nMODE=live\n", stg),
	})
	if again["envs/staging/db.enc.yaml"] == r.files["envs/staging/db.enc.yaml"] {
		t.Fatal("re-encryption gave the same file")
	}
	rotated := with(r.files, files{
		"envs/staging/db.enc.yaml": sopsEncrypt(t, "db.enc.yaml", strings.Replace(dbSecret, dbPassword, dbPassword+"-rotated", 1), stg),
	})
	keys := r.stagingKeys(t)
	digest := func(fs files) string {
		t.Helper()
		res, err := renderKeys(t, fs, "envs/staging", keys)
		if err != nil {
			t.Fatalf("render: %v", err)
		}
		return res.Digest
	}
	first, second, third := digest(r.files), digest(again), digest(rotated)
	if first != second {
		t.Errorf("re-encrypting the same content changed the digest: %s → %s", first, second)
	}
	if first == third {
		t.Errorf("rotating a value kept the digest %s", first)
	}
	noSecrets(t, "digest", first)
}

func TestRenderRefusesDecryptedValuesOutsideSecrets(t *testing.T) {
	r := newSecretRepo(t)
	leak := with(r.files, files{
		"envs/staging/kustomization.yaml": r.files["envs/staging/kustomization.yaml"] + `replacements:
  - source: {kind: Secret, name: db, fieldPath: stringData.password}
    targets:
      - select: {kind: ConfigMap, name: app}
        fieldPaths: [data.LOG_LEVEL]
`,
	})
	_, err := renderKeys(t, leak, "envs/staging", r.stagingKeys(t))
	if !errors.Is(err, errLeak) {
		t.Fatalf("render = %v, want %v", err, errLeak)
	}
	t.Logf("error: %v", err)
	for _, w := range []string{"ConfigMap staging/app at data.LOG_LEVEL", "envs/staging/db.enc.yaml stringData.password"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q", w)
		}
	}
	noSecrets(t, "error", err.Error())

	// A configMapGenerator reading an encrypted file.
	gen := with(r.files, files{
		"envs/staging/kustomization.yaml": r.files["envs/staging/kustomization.yaml"] + "configMapGenerator:\n  - name: settings\n    envs: [app.enc.env]\n",
	})
	_, err = renderKeys(t, gen, "envs/staging", r.stagingKeys(t))
	if !errors.Is(err, errLeak) || !strings.Contains(err.Error(), "ConfigMap staging/settings at data.API_TOKEN") {
		t.Errorf("render with a configMapGenerator of an encrypted file = %v, want %v naming data.API_TOKEN", err, errLeak)
	}
	noSecrets(t, "error", fmt.Sprint(err))

	// A ConfigMap encrypted by mistake: its values would show in diffs.
	id := newAgeIdentity(t)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: oops\ndata:\n  TOKEN: " + apiToken + "\n"
	_, err = renderKeys(t, files{"app/cm.enc.yaml": sopsEncrypt(t, "cm.enc.yaml", cm, encryptFor{Age: []*age.X25519Identity{id}})},
		"app", mustKeys(t, ageKeyFile("k.agekey", id)))
	if !errors.Is(err, errLeak) || !strings.Contains(err.Error(), "ConfigMap oops at data.TOKEN") {
		t.Errorf("render of an encrypted ConfigMap = %v, want %v naming data.TOKEN", err, errLeak)
	}
}

// TestRenderCacheKeysOnKeys pins that a rendering decrypted with one
// environment's keys is never served to a render with other keys.
func TestRenderCacheKeysOnKeys(t *testing.T) {
	r := newSecretRepo(t)
	tree := commitFiles(t, r.files)
	rd := NewRenderer(DefaultOptions())
	if _, err := rd.RenderWith(t.Context(), tree, "envs/staging", Input{Keys: r.stagingKeys(t)}); err != nil {
		t.Fatalf("render with staging's keys: %v", err)
	}
	if _, err := rd.Render(t.Context(), tree, "envs/staging"); !errors.Is(err, errNoKeys) {
		t.Errorf("render without keys after a decrypted render = %v, want %v", err, errNoKeys)
	}
	if _, err := rd.RenderWith(t.Context(), tree, "envs/staging", Input{Keys: r.productionKeys(t)}); !errors.Is(err, errWrongKey) {
		t.Errorf("render with production's keys = %v, want %v", err, errWrongKey)
	}
	before := rd.builds.Load()
	if _, err := rd.RenderWith(t.Context(), tree, "envs/staging", Input{Keys: r.stagingKeys(t)}); err != nil {
		t.Fatalf("render again with (a new parse of) staging's keys: %v", err)
	}
	if rd.builds.Load() != before {
		t.Error("the same keys did not hit the cache")
	}
}

func TestParseKeys(t *testing.T) {
	id := newAgeIdentity(t)
	e := newPGPEntity(t)
	k := mustKeys(t, ageKeyFile("a.agekey", id), pgpKeyFile(t, "b.asc", e, true))
	if got := strings.Join(k.Public(), ","); got != id.Recipient().String()+","+pgpFingerprint(e) {
		t.Errorf("Public() = %s", got)
	}
	if k.Empty() || !(*Keys)(nil).Empty() || !mustKeys(t).Empty() {
		t.Error("Empty() is wrong")
	}
	secret := id.String()
	for _, tt := range []struct {
		name string
		file KeyFile
		want string
	}{
		{"unknown suffix", KeyFile{Name: "keys.txt", Data: []byte(secret)}, "keys.txt: unknown kind of key"},
		{"broken age key", KeyFile{Name: "x.agekey", Data: []byte(secret[:len(secret)-3] + "zzz\n")}, "x.agekey"},
		{"no age key", KeyFile{Name: "x.agekey", Data: []byte("# nothing\n")}, "x.agekey"},
		{"public OpenPGP key", pgpKeyFile(t, "pub.asc", e, false), "is a public key"},
		{"not OpenPGP", KeyFile{Name: "y.asc", Data: []byte(secret)}, "y.asc: not an armored OpenPGP key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys(tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseKeys = %v, want an error with %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") || strings.Contains(err.Error(), secret[20:40]) {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
}
