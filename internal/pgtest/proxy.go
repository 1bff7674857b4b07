package pgtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of the test server that makes the network faults a production deployment
// meets: a connection cut after the client's COMMIT reached the server but before its reply came back, and a
// black-holed path (nothing forwarded, nothing closed). Point a database URL at it with URL.
type Proxy struct {
	ln     net.Listener
	target string

	mu        sync.Mutex
	cond      *sync.Cond
	blackhole bool
	cutCommit int // COMMITs still to cut after
	cuts      int // COMMITs cut so far
	commits   int // COMMITs forwarded so far
	conns     map[*proxyConn]bool
	closed    bool
}

type proxyConn struct {
	client, server net.Conn
	dropReplies    bool // set under Proxy.mu once a COMMIT is forwarded to be cut
	once           sync.Once
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

// StartProxy listens on 127.0.0.1 and forwards every connection to the test server (URL's host). It is
// closed when the test ends.
func StartProxy(t testing.TB) *Proxy {
	t.Helper()
	u, err := url.Parse(URL())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: map[*proxyConn]bool{}}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// URL is rawURL with its host replaced by the proxy's.
func (p *Proxy) URL(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// CutAfterCommit makes the proxy cut the next n COMMITs' connections: each COMMIT is forwarded, the server's
// reply (the COMMIT has then happened) is read and thrown away, and both sides are closed.
func (p *Proxy) CutAfterCommit(n int) {
	p.mu.Lock()
	p.cutCommit += n
	p.mu.Unlock()
}

// Cuts is how many COMMITs have been cut so far.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Commits is how many COMMITs have been forwarded so far, cut or not.
func (p *Proxy) Commits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commits
}

// Blackhole stops (on) or resumes (off) forwarding in both directions on every connection, new ones
// included. Nothing is closed and what was read is held, as a path that drops packets makes TCP do.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.mu.Unlock()
	p.cond.Broadcast()
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed, p.blackhole = true, false
	conns := p.conns
	p.conns = map[*proxyConn]bool{}
	p.mu.Unlock()
	p.cond.Broadcast()
	p.ln.Close()
	for c := range conns {
		c.close()
	}
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: server}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = true
	p.mu.Unlock()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { p.fromClient(c); done <- struct{}{} }()
	go func() { p.fromServer(c); done <- struct{}{} }()
	<-done
}

// pass waits while the path is black-holed; false when the proxy is closed.
func (p *Proxy) pass() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.blackhole && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

// fromClient forwards the client's messages one by one, so that a COMMIT can be recognised. The first
// messages have no type byte: an SSL or GSS encryption request (answered by one byte) or the startup message.
func (p *Proxy) fromClient(c *proxyConn) {
	typed := false
	hdr := make([]byte, 5)
	for {
		var msg []byte
		if !typed {
			if _, err := io.ReadFull(c.client, hdr[:4]); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint32(hdr[:4]))
			if n < 8 {
				return
			}
			msg = make([]byte, n)
			copy(msg, hdr[:4])
			if _, err := io.ReadFull(c.client, msg[4:]); err != nil {
				return
			}
			// 3.0 startup; what follows is typed. (SSL/GSS requests stay untyped until the startup comes.)
			typed = binary.BigEndian.Uint32(msg[4:8]) == 196608
		} else {
			if _, err := io.ReadFull(c.client, hdr); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint32(hdr[1:5]))
			if n < 4 {
				return
			}
			msg = make([]byte, 1+n)
			copy(msg, hdr)
			if _, err := io.ReadFull(c.client, msg[5:]); err != nil {
				return
			}
		}
		if !p.pass() {
			return
		}
		if typed && msg[0] == 'Q' && isCommit(msg[5:]) {
			p.mu.Lock()
			p.commits++
			if p.cutCommit > 0 {
				p.cutCommit--
				p.cuts++
				c.dropReplies = true
			}
			p.mu.Unlock()
		}
		if _, err := c.server.Write(msg); err != nil {
			return
		}
	}
}

func isCommit(query []byte) bool {
	q := bytes.TrimSpace(bytes.TrimRight(query, "\x00"))
	q = bytes.TrimRight(q, ";")
	return bytes.EqualFold(q, []byte("commit"))
}

// fromServer copies the server's bytes to the client. After a COMMIT that is to be cut, the reply is read
// (proof that the server committed) and dropped, and the connection is closed.
func (p *Proxy) fromServer(c *proxyConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			p.mu.Lock()
			drop := c.dropReplies
			p.mu.Unlock()
			if drop {
				c.close()
				return
			}
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
