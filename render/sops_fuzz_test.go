package render

import (
	"strings"
	"testing"

	"filippo.io/age"
)

// FuzzDecryptFile feeds hostile variants of encrypted files to the
// decryption: it must fail with an error naming the file, or pass a file
// that is no SOPS file through unchanged; never panic, never return a
// plaintext with an error (decryptFile recovers from a panic, which this
// counts as a failure all the same).
func FuzzDecryptFile(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	to := encryptFor{Age: []*age.X25519Identity{id}}
	f.Add("db.enc.yaml", sopsEncrypt(f, "db.enc.yaml", dbSecret, to))
	f.Add("app.env", sopsEncrypt(f, "app.env", "API_TOKEN="+apiToken+"\n", to))
	f.Add("tls.key", sopsEncrypt(f, "tls.key", tlsKey, to))
	f.Add("s.json", sopsEncrypt(f, "s.json", `{"a": "`+apiToken+`"}`, encryptFor{Age: to.Age, EncryptedRegex: "^a$"}))
	keys, err := ParseKeys(ageKeyFile("k.agekey", id))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, data string) {
		if strings.ContainsAny(name, "/\x00") {
			return
		}
		plain, _, err := decryptFile("repo/"+name, []byte(data), keys)
		if err != nil {
			if plain != nil {
				t.Errorf("error %v with content", err)
			}
			if !strings.HasPrefix(err.Error(), "repo/"+name+": ") {
				t.Errorf("error does not start with the file: %v", err)
			}
			if strings.Contains(err.Error(), "(panic)") {
				t.Errorf("the decryption panicked: %v", err)
			}
		}
	})
}
