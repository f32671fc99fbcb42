package ldaptest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// FaultServer serves every connection with handle on a loopback port and
// returns its address: a directory that misbehaves as handle does.
// Connections and the listener close when the test ends.
func FaultServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { handle(c) })
		}
	})
	return ln.Addr().String()
}

// Silent accepts and never answers: a hung slapd, a black-holing proxy.
func Silent(c net.Conn) { io.Copy(io.Discard, c) }

// ClosesMidBind reads the start of the first request (the bind), then
// closes the connection.
func ClosesMidBind(c net.Conn) {
	io.ReadFull(c, make([]byte, 8))
	c.Close()
}
