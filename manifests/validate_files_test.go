package manifests

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// validate checks, offline, the files the manifest names: SSH identity
// and known_hosts files, and an own certificate against its key, chain,
// clock and the registration URL.
func TestValidateFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := ssh.MarshalPrivateKey(priv, "")
	locked, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pass"))
	sshPub, _ := ssh.NewPublicKey(pub)
	write("id_ok", string(pem.EncodeToMemory(blk)), 0o600)
	write("id_open", string(pem.EncodeToMemory(blk)), 0o644)
	write("id_locked", string(pem.EncodeToMemory(locked)), 0o600)
	write("id_pub", string(ssh.MarshalAuthorizedKey(sshPub)), 0o600)
	write("id_junk", "not a key\n", 0o600)
	write("kh_bad", "10.0.0.11 ssh-ed25519 !!!notbase64\n", 0o600)
	write("cert.pem", testTLS.cert, 0o644)
	write("key.pem", testTLS.key, 0o600)
	write("chain.pem", testTLS.chain, 0o644)
	write("other-chain.pem", strings.Replace(testTLS.cert, "", "", 1), 0o644) // the leaf is no CA of itself

	cert := func(url, chain string) string {
		return valid + "rancher:\n  hostRegistrationUrl: " + url + "\n  certificate: {cert: {file: cert.pem}, key: {file: key.pem}, chain: {file: " + chain + "}}\n"
	}
	ssh := func(field, file string) string { return valid + "ssh: {" + field + ": " + file + "}\n" }
	tests := []struct{ name, src, want string }{
		{"identity ok", ssh("identityFile", "id_ok"), ""},
		{"identity missing", ssh("identityFile", "id_none"), "warning: ssh.identityFile: id_none does not exist"},
		{"identity readable by others", ssh("identityFile", "id_open"), "warning: ssh.identityFile: id_open is readable by others (mode 0644)"},
		{"identity with a passphrase", ssh("identityFile", "id_locked"), "warning: ssh.identityFile: id_locked is passphrase-protected"},
		{"identity is a public key", ssh("identityFile", "id_pub"), "error: ssh.identityFile: id_pub is a public key"},
		{"identity is junk", ssh("identityFile", "id_junk"), "error: ssh.identityFile: id_junk is not an SSH private key"},
		{"identity is a directory", ssh("identityFile", "."), "error: ssh.identityFile: cannot read"},
		{"known_hosts bad line", ssh("knownHostsFile", "kh_bad"), "error: ssh.knownHostsFile: knownhosts:"},
		{"known_hosts missing, strict", ssh("knownHostsFile", "kh_none"), "warning: ssh.knownHostsFile: kh_none does not exist"},
		{"certificate ok", cert("https://rancher.example.com", "chain.pem"), ""},
		{"certificate for another host", cert("https://other.example.com", "chain.pem"), "error: the certificate is not valid for other.example.com, the registration URL's host"},
		{"chain that did not sign it", cert("https://rancher.example.com", "other-chain.pem"), "error: the certificate does not verify against rancher.certificate.chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := testLoader().LoadBytes("c.yaml", []byte(tt.src), dir)
			var all []string
			for _, d := range ds {
				all = append(all, d.Compact())
			}
			got := strings.Join(all, "\n")
			if tt.want == "" && len(ds) != 0 || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("diagnostics:\n%s\nwant %q", got, tt.want)
			}
			if strings.Contains(got, "BEGIN") || strings.Contains(got, "MIG") {
				t.Errorf("key material in a diagnostic:\n%s", got)
			}
		})
	}
}
