package render

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
	"go.yaml.in/yaml/v3"
	"gopkg.in/ini.v1"
)

// TestDecryptFileAsSOPSWrites: files encrypted by SOPS's own Go code (in
// internal/sopstest, which only the tests link) in every format and with
// SOPS's options decrypt back to what was encrypted, and a value injected
// or changed by hand fails the integrity check.
func TestDecryptFileAsSOPSWrites(t *testing.T) {
	id := newAgeIdentity(t)
	keys := mustKeys(t, ageKeyFile("k.agekey", id))
	ageOnly := encryptFor{Age: []*age.X25519Identity{id}}
	const yamlDocs = `# a file of two documents
apiVersion: v1
kind: Secret
metadata:
    name: db # the database
    labels: {tier: data}
stringData:
    password: hunter2-conformance
    port: 5432
    ratio: 0.25
    big: 1e3
    enabled: true
    nothing: null
    empty: ""
    note_unencrypted: left in clear
    hosts:
        - a.example
        - b.example
    nested:
        - {name: one, value: 1}
        - [2, [3, "four"]]
---
apiVersion: v1
kind: ConfigMap
metadata:
    name: second
data:
    k: v
`
	const jsonDoc = `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "j"},
"data": {"a": "hunter2", "n": 12345678901, "f": -0.5, "t": false, "z": null, "list": [1, "x", {"deep": [true]}]}}`
	const dotenv = "# a comment\nTOKEN=hunter2-dotenv\nMULTI=line one\\nline two\nEQ=a=b\nEMPTY=\n"
	const iniDoc = "top = 1\n\n[database]\nuser = app\npassword = hunter2-ini\n\n[cache]\nsize = 64\n"

	for _, tc := range []struct {
		name, file, plain string
		to                encryptFor
	}{
		{"yaml", "db.yaml", yamlDocs, ageOnly},
		{"yaml, encrypted_regex", "db.yaml", yamlDocs, encryptFor{Age: ageOnly.Age, EncryptedRegex: "^(data|stringData)$"}},
		{"yaml, mac_only_encrypted", "db.yaml", yamlDocs, encryptFor{Age: ageOnly.Age, EncryptedRegex: "^stringData$", MACOnlyEncrypted: true}},
		{"yaml, custom unencrypted suffix", "db.yaml", yamlDocs, encryptFor{Age: ageOnly.Age, UnencryptedSuffix: "name"}},
		{"json", "s.json", jsonDoc, ageOnly},
		{"dotenv", "app.env", dotenv, ageOnly},
		{"ini", "app.ini", iniDoc, ageOnly},
		{"binary", "tls.key", "\x00\x01binary hunter2\xff", ageOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc := sopsEncrypt(t, tc.file, tc.plain, tc.to)
			got, values, err := decryptFile(tc.file, []byte(enc), keys)
			if err != nil {
				t.Fatalf("decrypt: %v\n%s", err, enc)
			}
			sameContent(t, tc.file, string(got), tc.plain)
			if len(values) == 0 {
				t.Error("no decrypted values listed")
			}
			// A value changed in the clear, or injected where SOPS would
			// have encrypted it, fails the MAC or the decryption.
			var tampered string
			switch tc.name {
			case "yaml, encrypted_regex", "yaml, mac_only_encrypted":
				tampered = strings.Replace(enc, "    password: ENC[", "    injected: evil\n    password: ENC[", 1)
			case "yaml", "yaml, custom unencrypted suffix":
				// The first ciphertext is the comment's: comments are
				// outside the MAC, in SOPS too.
				tampered = strings.Replace(enc, "kind: ENC[AES256_GCM,data:", "kind: ENC[AES256_GCM,data:A", 1)
			case "json":
				tampered = strings.Replace(enc, "ENC[AES256_GCM,data:", "ENC[AES256_GCM,data:A", 1)
			case "dotenv":
				tampered = strings.Replace(enc, "TOKEN=ENC[", "INJECTED=evil\nTOKEN=ENC[", 1)
			case "ini":
				tampered = strings.Replace(enc, "[cache]", "[cache]\ninjected = evil", 1)
			}
			if tampered != "" {
				if tampered == enc {
					t.Fatal("the tampering changed nothing")
				}
				if _, _, err := decryptFile(tc.file, []byte(tampered), keys); !errors.Is(err, errTampered) {
					t.Errorf("tampered file: %v, want %v", err, errTampered)
				}
			}
		})
	}

	// Key groups: each key its own group, any two of three shares
	// recover the data key, one does not.
	ids := []*age.X25519Identity{newAgeIdentity(t), newAgeIdentity(t), newAgeIdentity(t)}
	enc := sopsEncrypt(t, "db.yaml", yamlDocs, encryptFor{Age: ids, Threshold: 2})
	two := mustKeys(t, ageKeyFile("a.agekey", ids[0]), ageKeyFile("c.agekey", ids[2]))
	got, _, err := decryptFile("db.yaml", []byte(enc), two)
	if err != nil {
		t.Fatalf("two of three shares: %v", err)
	}
	sameContent(t, "db.yaml", string(got), yamlDocs)
	if _, _, err := decryptFile("db.yaml", []byte(enc), mustKeys(t, ageKeyFile("b.agekey", ids[1]))); !errors.Is(err, errWrongKey) {
		t.Errorf("one of three shares: %v, want %v", err, errWrongKey)
	}
}

// sameContent compares a decrypted file with the plaintext it was made
// from, by content: YAML and JSON as documents, INI as sections, the rest
// byte for byte.
func sameContent(t *testing.T, name, got, want string) {
	t.Helper()
	switch {
	case strings.HasSuffix(name, ".yaml"), strings.HasSuffix(name, ".json"):
		if g, w := yamlDocsOf(t, got), yamlDocsOf(t, want); !reflect.DeepEqual(g, w) {
			t.Errorf("decrypted %s:\n%v\nwant\n%v\n(file:\n%s)", name, g, w, got)
		}
	case strings.HasSuffix(name, ".ini"):
		g, w := iniOf(t, got), iniOf(t, want)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("decrypted %s: %v, want %v\n(file:\n%s)", name, g, w, got)
		}
	default:
		if got != want {
			t.Errorf("decrypted %s: %q, want %q", name, got, want)
		}
	}
}

func yamlDocsOf(t *testing.T, s string) []any {
	t.Helper()
	var out []any
	d := yaml.NewDecoder(strings.NewReader(s))
	for {
		var v any
		if err := d.Decode(&v); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("%v\n%s", err, s)
		}
		out = append(out, numbersAsFloats(v))
	}
}

// numbersAsFloats: SOPS writes a float with no fraction as an integer
// (1e3 comes back as 1000), as its own decryption does.
func numbersAsFloats(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = numbersAsFloats(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbersAsFloats(e)
		}
	case int:
		return float64(v)
	}
	return v
}

func iniOf(t *testing.T, s string) map[string]map[string]string {
	t.Helper()
	f, err := ini.Load([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, sec := range f.Sections() {
		out[sec.Name()] = sec.KeysHash()
	}
	return out
}
