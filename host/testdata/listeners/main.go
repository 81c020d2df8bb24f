// Command listeners serves N TLS endpoints on 127.0.0.1 in five distinct
// configurations, prints one "config address" line each, then runs until
// stdin closes. It is the far side of the many-endpoints scan benchmark and
// runs in its own process so the scanner's measurements are its own.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"syscall"
	"time"
)

func cert(key any, pub any) tls.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(60 * 24 * time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func main() {
	n := flag.Int("n", 1000, "number of listeners")
	flag.Parse()
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)

	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec, rs := cert(ek, &ek.PublicKey), cert(rk, &rk.PublicKey)
	configs := []struct {
		name string
		cfg  *tls.Config
	}{
		{"intermediate-ecdsa", &tls.Config{Certificates: []tls.Certificate{ec}, MinVersion: tls.VersionTLS12}},
		{"modern-tls13", &tls.Config{Certificates: []tls.Certificate{ec}, MinVersion: tls.VersionTLS13}},
		{"legacy-rsa-cbc", &tls.Config{Certificates: []tls.Certificate{rs}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}}},
		{"tls12-ecdsa-two-suites", &tls.Config{Certificates: []tls.Certificate{ec}, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}}},
		{"mtls-required", &tls.Config{Certificates: []tls.Certificate{ec}, ClientAuth: tls.RequireAnyClientCert}},
	}
	for i := 0; i < *n; i++ {
		c := configs[i%len(configs)]
		ln, err := tls.Listen("tcp", "127.0.0.1:0", c.cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(1)
		}
		fmt.Printf("%s %s\n", c.name, ln.Addr())
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					conn.SetDeadline(time.Now().Add(5 * time.Second))
					conn.(*tls.Conn).Handshake()
					conn.Close()
				}()
			}
		}()
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}
