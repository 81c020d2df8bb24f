// Command server is a TLS service for tests: it serves the certificate in
// its -cert/-key files, reads them again on SIGHUP (as nginx or HAProxy
// do), and writes its pid to -pidfile.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	certFile := flag.String("cert", "", "certificate chain (PEM)")
	keyFile := flag.String("key", "", "key (PEM)")
	pidFile := flag.String("pidfile", "", "pid file")
	flag.Parse()
	var cur atomic.Pointer[tls.Certificate]
	load := func() {
		c, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Printf("reload: %v (keeping the old certificate)", err)
			return
		}
		cur.Store(&c)
	}
	load()
	if cur.Load() == nil {
		log.Fatal("no certificate")
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			load()
		}
	}()
	ln, err := tls.Listen("tcp", *addr, &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil }})
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*pidFile, []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c net.Conn) {
			defer c.Close()
			if err := c.(*tls.Conn).Handshake(); err == nil {
				c.Write([]byte("ok\n"))
			}
		}(c)
	}
}
