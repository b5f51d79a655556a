package manifests

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// What can be known offline about the files a manifest names is checked by
// validate, before anything connects: an SSH identity file is a private
// key only its owner reads, a known_hosts file parses, and an own
// certificate is PEM, matches its key, verifies against its chain, is
// valid now and names the registration URL's host.

// maxKeyFile bounds an identity or known_hosts file read for validation.
const maxKeyFile = 1 << 20

// identityFile checks an SSH identity file.
func (v *validator) identityFile(path, file string) {
	if file == "" {
		return
	}
	shown := v.shown(file)
	b, err := readRegular(file, maxKeyFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// OpenSSH goes on with the agent's keys; so does haplan.
		v.warnf(path, "haplan uses the keys ssh-agent offers instead; plan and apply fail if it has none the machines accept.", "%s: %s does not exist", path, shown)
		return
	case err != nil:
		v.errorf(path, "", "%s: cannot read %s: %s", path, shown, errReason(err))
		return
	}
	if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o077 != 0 {
		v.warnf(path, fmt.Sprintf("Keep it private: OpenSSH refuses a key others can read (\"UNPROTECTED PRIVATE KEY FILE\"); chmod 600 %s.", shown),
			"%s: %s is readable by others (mode %04o)", path, shown, fi.Mode().Perm())
	}
	_, err = ssh.ParseRawPrivateKey(b)
	var pm *ssh.PassphraseMissingError
	switch {
	case err == nil:
	case errors.As(err, &pm):
		v.warnf(path, "haplan does not ask for passphrases: load the key into ssh-agent (ssh-add) and haplan uses it from there.",
			"%s: %s is passphrase-protected", path, shown)
	default:
		if _, _, _, _, perr := ssh.ParseAuthorizedKey(b); perr == nil {
			v.errorf(path, "Give the private key: the file without .pub.", "%s: %s is a public key", path, shown)
		} else {
			v.errorf(path, "", "%s: %s is not an SSH private key: %v", path, shown, err)
		}
	}
}

// knownHostsFile checks a known_hosts file: missing is fine with
// accept-new, a warning with strict (every connection would be refused);
// a line that does not parse is an error naming it.
func (v *validator) knownHostsFile(path, file, policy string) {
	if file == "" {
		return
	}
	shown := v.shown(file)
	if _, err := readRegular(file, maxKeyFile); errors.Is(err, os.ErrNotExist) {
		if policy == HostKeyStrict {
			v.warnf(path, "With hostKeyPolicy strict every connection is refused until the hosts' keys are in it: ssh-keyscan them (and check the fingerprints), or set hostKeyPolicy: accept-new for the first run.",
				"%s: %s does not exist", path, shown)
		}
		return
	} else if err != nil {
		v.errorf(path, "", "%s: cannot read %s: %s", path, shown, errReason(err))
		return
	}
	if _, err := knownhosts.New(file); err != nil {
		v.errorf(path, "", "%s: %v", path, err)
	}
}

// certificate checks an own certificate whose parts could be read.
func (v *validator) certificate(c *Cluster) {
	ct := c.Rancher.Certificate
	if ct == nil {
		return
	}
	read := func(s Secret) []byte {
		val, err := s.resolve(v.lookupEnv)
		if err != nil {
			return nil // reported by secret, or not there (validate offline)
		}
		return []byte(val.Reveal())
	}
	certPEM, keyPEM, chainPEM := read(ct.Cert), read(ct.Key), read(ct.Chain)
	if certPEM == nil {
		return
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		v.errorf("rancher.certificate.cert", "Give the certificate in PEM (-----BEGIN CERTIFICATE-----).", "rancher.certificate.cert is not a PEM certificate")
		return
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		v.errorf("rancher.certificate.cert", "", "rancher.certificate.cert: %v", err)
		return
	}
	if keyPEM != nil {
		if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
			// The error of X509KeyPair never holds the key.
			v.errorf("rancher.certificate.key", "", "rancher.certificate.key does not go with the certificate: %v", err)
		}
	}
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		v.errorf("rancher.certificate.cert", "", "the certificate expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		v.errorf("rancher.certificate.cert", "", "the certificate is valid only from %s", leaf.NotBefore.UTC().Format(time.DateOnly))
	case leaf.NotAfter.Sub(now) < 30*24*time.Hour:
		v.warnf("rancher.certificate.cert", "", "the certificate expires on %s, in less than 30 days", leaf.NotAfter.UTC().Format(time.DateOnly))
	}
	if u, err := url.Parse(c.Rancher.HostRegistrationURL); err == nil && u.Hostname() != "" {
		if err := leaf.VerifyHostname(u.Hostname()); err != nil {
			v.errorf("rancher.certificate.cert", "Agents verify the server by the registration URL's host name.", "the certificate is not valid for %s, the registration URL's host: %v", u.Hostname(), err)
		}
	}
	if chainPEM == nil {
		return
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for rest := chainPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			v.errorf("rancher.certificate.chain", "", "rancher.certificate.chain: %v", err)
			return
		}
		n++
		if cert.IsCA && string(cert.RawIssuer) == string(cert.RawSubject) {
			roots.AddCert(cert)
		} else {
			inter.AddCert(cert)
		}
	}
	if n == 0 {
		v.errorf("rancher.certificate.chain", "Give the CA chain in PEM (-----BEGIN CERTIFICATE-----), root included.", "rancher.certificate.chain holds no PEM certificate")
		return
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now}); err != nil {
		v.errorf("rancher.certificate.chain", "The nodes and agents trust the chain's root: it must be the CA that signed the certificate, root included.",
			"the certificate does not verify against rancher.certificate.chain: %v", err)
	}
}
