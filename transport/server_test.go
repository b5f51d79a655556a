package transport

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SSH server on 127.0.0.1 that runs each exec
// request with /bin/sh -c locally (rig's startSSHServer model).
type testServer struct {
	t       *testing.T
	addr    string
	hostKey ssh.Signer
	env     []string // environment of executed commands
	// ignoreSignals refuses "signal" requests, as OpenSSH does for root.
	ignoreSignals bool

	mu        sync.Mutex
	conns     int      // TCP connections accepted
	handshook int      // successful handshakes
	forwards  int      // direct-tcpip channels served
	execs     []string // exec payloads seen
	open      []net.Conn
	stdins    [][]byte
}

// newKey returns a fresh ed25519 signer and its OpenSSH private key file.
func newKey(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(f, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, f
}

// startServer accepts the client keys in authorized.
func startServer(t *testing.T, authorized ...ssh.PublicKey) *testServer {
	t.Helper()
	return startServerWith(t, nil, authorized...)
}

// startServerWith is startServer with tune applied to the server's config.
func startServerWith(t *testing.T, tune func(*ssh.ServerConfig), authorized ...ssh.PublicKey) *testServer {
	t.Helper()
	hk, _ := newKey(t)
	s := &testServer{t: t, hostKey: hk, env: os.Environ()}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			for _, a := range authorized {
				if bytes.Equal(a.Marshal(), k.Marshal()) {
					return nil, nil
				}
			}
			return nil, errors.New("unauthorized")
		},
	}
	cfg.AddHostKey(hk)
	if tune != nil {
		tune(cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.open = append(s.open, c)
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c, cfg)
			}()
		}
	}()
	return s
}

func (s *testServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	s.mu.Lock()
	s.handshook++
	s.mu.Unlock()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		if nc.ChannelType() == "direct-tcpip" {
			s.mu.Lock()
			s.forwards++
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				forward(nc)
			}()
			continue
		}
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.session(ch, creqs)
		}()
	}
	wg.Wait()
}

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	exited := make(chan uint32, 1)
	for {
		var req *ssh.Request
		var ok bool
		select {
		case req, ok = <-reqs:
		case code := <-exited:
			_, _ = ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, code))
			return
		}
		if !ok {
			// Like sshd: closing the channel does not stop the process.
			return
		}
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil || cmd != nil {
				_ = req.Reply(false, nil)
				continue
			}
			cmd = exec.Command("/bin/sh", "-c", p.Command)
			cmd.Env = s.env
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.WaitDelay = time.Second
			var stdin bytes.Buffer
			cmd.Stdin = io.TeeReader(ch, &stdin)
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			if err := cmd.Start(); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			_ = req.Reply(true, nil)
			go func() {
				err := cmd.Wait()
				s.mu.Lock()
				s.execs = append(s.execs, p.Command)
				s.stdins = append(s.stdins, stdin.Bytes())
				s.mu.Unlock()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
					if code < 0 {
						code = 128 + 9
					}
				}
				exited <- uint32(code)
			}()
		case "signal":
			if s.ignoreSignals {
				_ = req.Reply(false, nil)
				continue
			}
			if cmd != nil && cmd.Process != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			if req.WantReply {
				_ = req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// dropAll cuts every connection, as a host reboot would.
func (s *testServer) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.open {
		c.Close()
	}
	s.open = nil
}

func (s *testServer) counts() (conns, handshakes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, s.handshook
}

func (s *testServer) seen() ([]string, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.execs...), append([][]byte(nil), s.stdins...)
}

func (s *testServer) hostPort(t *testing.T) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, port
}

// knownHosts writes a known_hosts file holding key for the server.
func (s *testServer) knownHosts(t *testing.T, key ssh.PublicKey, hashed bool) string {
	t.Helper()
	name := knownhosts.Normalize(s.addr)
	if hashed {
		name = knownhosts.HashHostname(name)
	}
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, []byte(knownhosts.Line([]string{name}, key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// fixture is a server plus a Config that reaches it with strict checking.
type fixture struct {
	srv *testServer
	cfg Config
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	client, keyFile := newKey(t)
	srv := startServer(t, client.PublicKey())
	h, p := srv.hostPort(t)
	return fixture{srv: srv, cfg: Config{
		Host:           "h1",
		Address:        h,
		Port:           p,
		User:           "tester",
		IdentityFile:   keyFile,
		KnownHostsFile: srv.knownHosts(t, srv.hostKey.PublicKey(), false),
	}}
}

func newTestPool(t *testing.T, opts PoolOptions) *Pool {
	t.Helper()
	if opts.Backoff == 0 {
		opts.Backoff = 1
	}
	p := NewPool(opts)
	t.Cleanup(func() { p.Close() })
	return p
}

// forward serves a direct-tcpip channel (what a ProxyJump client asks a
// bastion for).
func forward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	conn, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	defer conn.Close()
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, ch); done <- struct{}{} }()
	go func() { _, _ = io.Copy(ch, conn); done <- struct{}{} }()
	<-done
}
