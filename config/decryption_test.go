package config_test

import (
	"reflect"
	"testing"

	"ferry.dev/ferry/config"
)

func TestParseDecryption(t *testing.T) {
	c, err := config.Parse([]byte(`
environments:
  - name: staging
    source: {url: https://git.example.com/app.git, branch: main, path: envs/staging}
    decryption: {secretRef: {name: sops-keys-staging}}
  - name: production
    source: {url: https://git.example.com/app.git, branch: production, path: envs/production}
    decryption:
      keyFiles: [/var/run/ferry/production.agekey, /var/run/ferry/ops.asc]
      secretRef: {name: sops-keys}
  - name: dev
    source: {url: https://git.example.com/app.git, branch: dev, path: envs/dev}
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []*config.Decryption{
		{SecretRef: &config.SecretRef{Name: "sops-keys-staging"}},
		{KeyFiles: []string{"/var/run/ferry/production.agekey", "/var/run/ferry/ops.asc"}, SecretRef: &config.SecretRef{Name: "sops-keys"}},
		nil,
	}
	for i, w := range want {
		if got := c.Environments[i].Decryption; !reflect.DeepEqual(got, w) {
			t.Errorf("environments[%d].decryption = %+v, want %+v", i, got, w)
		}
	}
}

func TestParseDecryptionProblems(t *testing.T) {
	_, err := config.Parse([]byte(`
environments:
  - {name: a, source: {url: https://git.example.com/app.git, branch: a, path: .}, decryption: {}}
  - {name: b, source: {url: https://git.example.com/app.git, branch: b, path: .}, decryption: {keyFiles: [/k/keys.txt, ""]}}
  - {name: c, source: {url: https://git.example.com/app.git, branch: c, path: .}, decryption: {secretRef: {name: Sops Keys}}}
  - {name: d, source: {url: https://git.example.com/app.git, branch: d, path: .}, decryption: {secretRef: {}}}
  - {name: e, source: {url: https://git.example.com/app.git, branch: e, path: .}, decryption: {secretRef: sops-keys}}
  - {name: f, source: {url: https://git.example.com/app.git, branch: f, path: .}, decryption: {keyfiles: [/k/a.agekey]}}
`))
	checkProblems(t, err, []problem{
		{"environments[4].decryption.secretRef", "must be a mapping of fields"},
		{"environments[5].decryption.keyfiles", `did you mean "keyFiles"?`},
		{"environments[0].decryption", "gives no key: set keyFiles or secretRef"},
		{"environments[1].decryption.keyFiles[0]", `"/k/keys.txt": name it *.agekey (age identities) or *.asc`},
		{"environments[1].decryption.keyFiles[1]", "empty"},
		{"environments[2].decryption.secretRef.name", `"Sops Keys" is not a Secret name`},
		{"environments[3].decryption.secretRef.name", "required"},
		{"environments[5].decryption", "gives no key"},
	})
}
