package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Whoever may change settings may not read secrets: pointing a setting
// that decides where a secret goes somewhere else clears the secret unless
// it is given again in the same command. Before, the next connect sent the
// stored UCServer password (Basic auth, over http in clear) or the Teams
// client secret to the new endpoint.
func TestCLIBinary_SecretsBoundToTheirEndpoints(t *testing.T) {
	pb := newPB(t)
	db := filepath.Join(t.TempDir(), "state.db")
	pb.ok("", "config", "set", "ucserver.url", "https://ucserver.contoso.example:7225", "--db", db)
	pb.ok("uc-pass\n", "config", "set", "ucserver.password", "-", "--db", db)
	pb.ok("s3cret\n", "config", "set", "teams.client_secret", "-", "--db", db)
	masked := func(key string) bool {
		return strings.TrimSpace(pb.ok("", "config", "get", key, "--db", db)) != ""
	}

	// Another URL alone: the password goes, and the command says so.
	_, _, errs := pb.run("", "config", "set", "ucserver.url", "https://evil.example:7225", "--db", db)
	if !strings.Contains(errs, "cleared ucserver.password") || !strings.Contains(errs, "config set ucserver.password -") {
		t.Fatalf("the clearing was not announced: %q", errs)
	}
	if masked("ucserver.password") {
		t.Fatal("the UCServer password survived a change of ucserver.url")
	}
	// The URL and the password in one command: both stay.
	pb.ok("uc-pass\n", "config", "set", "ucserver.url", "https://ucserver2.contoso.example:7225", "ucserver.password", "-", "--db", db)
	if !masked("ucserver.password") {
		t.Fatal("the password given in the same command was dropped")
	}
	// The same URL again is no change: nothing is cleared.
	pb.ok("", "config", "set", "ucserver.url", "https://ucserver2.contoso.example:7225", "--db", db)
	if !masked("ucserver.password") {
		t.Fatal("setting the same URL cleared the password")
	}
	// Another Entra authority: the client secret goes.
	pb.ok("", "config", "set", "teams.authority_url", "https://login.evil.example", "--db", db)
	if masked("teams.client_secret") {
		t.Fatal("the client secret survived a change of teams.authority_url")
	}

	// Plain http to another machine only with the explicit opt-in.
	pb.fails("", []string{"ucserver.allow_http"}, "config", "set", "ucserver.url", "http://ucserver.contoso.example:7224", "--db", db)
	pb.ok("", "config", "set", "ucserver.url", "http://127.0.0.1:7224", "--db", db) // this machine: no network
	pb.ok("uc-pass\n", "config", "set", "ucserver.allow_http", "true", "ucserver.url", "http://ucserver.contoso.example:7224", "ucserver.password", "-", "--db", db)
	if !masked("ucserver.password") {
		t.Fatal("the password given with the opt-in was dropped")
	}

	// An import that moves the URL but only masks the password clears it
	// and says so.
	export := pb.ok("", "config", "export", "--db", db)
	moved := strings.Replace(export, "http://ucserver.contoso.example:7224", "https://elsewhere.example:7225", 1)
	if out := pb.ok(moved, "config", "import", "-", "--db", db); !strings.Contains(out, "ucserver.password") {
		t.Fatalf("the import did not report the cleared password:\n%s", out)
	}
	if masked("ucserver.password") {
		t.Fatal("a masked password followed the URL in an import")
	}
}
