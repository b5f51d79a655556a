package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key policies for Config.HostKeyPolicy.
const (
	HostKeyStrict    = "strict"
	HostKeyAcceptNew = "accept-new"
)

// hostKeyCheck verifies one host's key for one dial. It is built per dial so
// that keys appended by accept-new are seen by the next dial.
type hostKeyCheck struct {
	host    string
	policy  string
	file    string
	pinned  ssh.PublicKey
	writeMu *sync.Mutex // the pool's lock around known_hosts appends
	// passed is set once the server's key was accepted: an error after that
	// happened during authentication, not key exchange.
	passed bool
	// known are the keys algorithms found for the address.
	known []ssh.PublicKey
	// got is the key the server presented.
	got ssh.PublicKey
}

// noCommonType turns "no common host key algorithm" into a mismatch: the
// server has no key of any type we know for it.
func (h *hostKeyCheck) noCommonType(address string, err error) error {
	var ane *ssh.AlgorithmNegotiationError
	if len(h.known) == 0 || !errors.As(err, &ane) || ane.What != "host key" {
		return nil
	}
	return &HostKeyError{
		Host: h.host, Address: address, Want: fingerprints(h.known),
		Got:            fmt.Sprintf("no key of a known type (server offers %v)", ane.RequestedAlgorithms),
		KnownHostsFile: h.file, Pinned: h.pinned != nil,
	}
}

func newHostKeyCheck(c Config, writeMu *sync.Mutex) (*hostKeyCheck, error) {
	h := &hostKeyCheck{host: c.Host, policy: c.HostKeyPolicy, file: c.KnownHostsFile, writeMu: writeMu}
	if h.policy == "" {
		h.policy = HostKeyStrict
	}
	if h.policy != HostKeyStrict && h.policy != HostKeyAcceptNew {
		return nil, fmt.Errorf("%s: unknown host key policy %q (want %q or %q)", c.Host, h.policy, HostKeyStrict, HostKeyAcceptNew)
	}
	if c.HostKey != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
		if err != nil {
			return nil, fmt.Errorf("%s: parse pinned host key: %w", c.Host, err)
		}
		h.pinned = k
	}
	if h.file == "" && h.pinned == nil {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("%s: no known_hosts file configured and no home directory: %w", c.Host, err)
		}
		h.file = filepath.Join(home, ".ssh", "known_hosts")
	}
	return h, nil
}

// load reads the known_hosts file; a missing file is an empty database.
func (h *hostKeyCheck) load() (ssh.HostKeyCallback, error) {
	if h.file == "" {
		return nil, nil
	}
	cb, err := parsedKnownHosts(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read known_hosts: %w", h.host, err)
	}
	return cb, nil
}

// knownHostsCache keeps parsed known_hosts files while they are unchanged
// (same size and modification time). Without it every dial parsed the whole
// file twice: quadratic in the number of hosts, 42% of a 1000-host plan's
// CPU (bench/results). An accept-new append changes the size, so the next
// dial re-reads the file.
var knownHostsCache struct {
	sync.Mutex
	m map[string]knownHostsEntry
}

type knownHostsEntry struct {
	size int64
	mod  time.Time
	cb   ssh.HostKeyCallback
}

func parsedKnownHosts(file string) (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, err
	}
	knownHostsCache.Lock()
	defer knownHostsCache.Unlock()
	if e, ok := knownHostsCache.m[file]; ok && e.size == fi.Size() && e.mod.Equal(fi.ModTime()) {
		return e.cb, nil
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, err
	}
	if knownHostsCache.m == nil {
		knownHostsCache.m = map[string]knownHostsEntry{}
	}
	knownHostsCache.m[file] = knownHostsEntry{size: fi.Size(), mod: fi.ModTime(), cb: cb}
	return cb, nil
}

type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// algorithms returns the host key algorithms to negotiate so that the server
// presents a key of a type we know. Without this a server holding both an
// ecdsa and an ed25519 key could present the one not in known_hosts, which
// would look like a mismatch.
func (h *hostKeyCheck) algorithms(address string) ([]string, error) {
	h.known = nil
	var known []ssh.PublicKey
	if h.pinned != nil {
		known = []ssh.PublicKey{h.pinned}
	} else {
		cb, err := h.load()
		if err != nil || cb == nil {
			return nil, err
		}
		// Probe the database with a key nobody has: the KeyError lists
		// every key known for the address.
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		probe, err := ssh.NewPublicKey(pub)
		if err != nil {
			return nil, err
		}
		var ke *knownhosts.KeyError
		if err := cb(address, addrString(address), probe); errors.As(err, &ke) {
			for _, k := range ke.Want {
				known = append(known, k.Key)
			}
		}
	}
	h.known = known
	var algos []string
	seen := map[string]bool{}
	for _, k := range known {
		for _, a := range algosForKeyType(k.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}

func algosForKeyType(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{t}
}

func fingerprints(keys []ssh.PublicKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, ssh.FingerprintSHA256(k))
	}
	return out
}

// verify is the ssh.HostKeyCallback. The key is kept (got): a connection
// knows which machine it reached.
func (h *hostKeyCheck) verify(hostname string, remote net.Addr, key ssh.PublicKey) error {
	h.got = key
	herr := &HostKeyError{Host: h.host, Address: hostname, Got: ssh.FingerprintSHA256(key), KnownHostsFile: h.file}
	if h.pinned != nil {
		// A pinned key wins over known_hosts: it is the manifest's word.
		if string(h.pinned.Marshal()) == string(key.Marshal()) {
			h.passed = true
			return nil
		}
		herr.Pinned = true
		herr.Want = fingerprints([]ssh.PublicKey{h.pinned})
		return herr
	}
	cb, err := h.load()
	if err != nil {
		return err
	}
	if cb != nil {
		err = cb(hostname, remote, key)
		if err == nil {
			h.passed = true
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return fmt.Errorf("%s: verify host key: %w", h.host, err)
		}
		if len(ke.Want) > 0 {
			for _, k := range ke.Want {
				herr.Want = append(herr.Want, ssh.FingerprintSHA256(k.Key))
			}
			return herr
		}
	}
	herr.Unknown = true
	if h.policy != HostKeyAcceptNew {
		return herr
	}
	if err := h.appendKnown(hostname, key); err != nil {
		return err
	}
	h.passed = true
	return nil
}

func (h *hostKeyCheck) appendKnown(hostname string, key ssh.PublicKey) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return fmt.Errorf("%s: accept-new: %w", h.host, err)
	}
	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%s: accept-new: %w", h.host, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return fmt.Errorf("%s: accept-new: append to %s: %w", h.host, h.file, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: accept-new: append to %s: %w", h.host, h.file, err)
	}
	return nil
}
