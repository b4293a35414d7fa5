package store_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/presencebridge/presencebridge/store"
)

func TestDB_Credentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pb.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := db.TokenCache("svc@contoso.example"); err != nil || c != nil {
		t.Fatalf("empty cache: %q %v", c, err)
	}
	if err := db.PutTokenCache("Svc@Contoso.example", []byte(`{"AccessToken":{}}`)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutEncryptionCert([]byte("-----BEGIN CERTIFICATE-----")); err != nil {
		t.Fatal(err)
	}
	if err := db.PutTokenCache(" ", []byte("x")); err == nil {
		t.Fatal("empty account accepted")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.TokenCache("svc@contoso.example")
	if err != nil || !bytes.Equal(c, []byte(`{"AccessToken":{}}`)) {
		t.Fatalf("cache after reopen: %q %v", c, err)
	}
	pem, err := db.EncryptionCert()
	if err != nil || string(pem) != "-----BEGIN CERTIFICATE-----" {
		t.Fatalf("cert: %q %v", pem, err)
	}
	var out bytes.Buffer
	if err := db.ExportYAML(&out, true); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Bytes(), []byte("AccessToken")) || bytes.Contains(out.Bytes(), []byte("CERTIFICATE")) {
		t.Fatal("credentials leaked into the export")
	}
}

func TestOpen_UpgradesV1ToCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pb.db")
	db, err := store.Open(path, store.WithSchemaVersion(store.Options{}, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutTokenCache("svc@contoso.example", []byte("x")); err == nil {
		t.Fatal("a version 1 database has a credentials bucket")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PutTokenCache("svc@contoso.example", []byte("x")); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	backups, _ := filepath.Glob(path + ".bak-v1*")
	if len(backups) != 1 {
		t.Fatalf("backups %v", backups)
	}
}
