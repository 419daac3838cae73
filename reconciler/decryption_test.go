package reconciler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"ferry.dev/ferry/config"
)

func TestKeyLoaderFiles(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "staging.agekey")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	keys, err := keyLoader{}.load(t.Context())
	if err != nil || keys != nil {
		t.Fatalf("no decryption: load = %v, %v; want no keys", keys, err)
	}
	keys, err = keyLoader{decryption: &config.Decryption{KeyFiles: []string{keyFile}}}.load(t.Context())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if got := strings.Join(keys.Public(), ","); got != id.Recipient().String() {
		t.Errorf("keys = %s, want %s", got, id.Recipient())
	}

	missing := filepath.Join(dir, "production.agekey")
	_, err = keyLoader{decryption: &config.Decryption{KeyFiles: []string{keyFile, missing}}}.load(t.Context())
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("load with a missing file = %v, want an error naming it", err)
	}
	broken := filepath.Join(dir, "broken.agekey")
	if err := os.WriteFile(broken, []byte(id.String()[:40]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = keyLoader{decryption: &config.Decryption{KeyFiles: []string{broken}}}.load(t.Context())
	if err == nil || !strings.Contains(err.Error(), broken) || strings.Contains(err.Error(), id.String()[:40]) {
		t.Errorf("load with a broken key = %v, want an error naming the file and not the key", err)
	}
}
