// Package certlint lints certificates with zlint, the maintained linter of
// the certificate ecosystem, instead of hand-written rules. By default it
// runs the RFC lints (RFC 5280 profile, RFC 5480 ECC keys, RFC 5891 IDNs,
// RFC 8813 key usages): the CA/Browser Forum and Mozilla/Apple root-program
// lints target the public web PKI and misfire on a private CA and on
// 127.0.0.1. The probe kit and the Vault PKI plugin both use this package.
package certlint

import (
	"crypto/x509"
	"fmt"
	"sort"
	"strings"
	"sync"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3/lint"
	// Only the RFC lints are linked: importing zlint's root package would
	// register (and link) every root program's lints, costing plugin
	// launch time for lints this package never runs.
	_ "github.com/zmap/zlint/v3/lints/rfc"
)

// DefaultSources are the lint families run unless Options say otherwise.
var DefaultSources = lint.SourceList{lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC8813}

// Finding is one lint that did not pass.
type Finding struct {
	// Cert is the index in the chain (0 = leaf).
	Cert        int
	Lint        string
	Status      string // "error", "warn", "notice", "fatal"
	Description string
	Citation    string
	Source      string
}

func (f Finding) String() string {
	return fmt.Sprintf("cert[%d] %s %s: %s", f.Cert, f.Status, f.Lint, f.Description)
}

var (
	regOnce sync.Once
	reg     lint.Registry
	regErr  error
)

func defaultRegistry() (lint.Registry, error) {
	regOnce.Do(func() {
		reg, regErr = lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: DefaultSources})
	})
	return reg, regErr
}

// Lint runs the default lints on every certificate of chain and returns the
// findings of status notice or worse, most severe first.
func Lint(chain []*x509.Certificate) ([]Finding, error) {
	r, err := defaultRegistry()
	if err != nil {
		return nil, err
	}
	var out []Finding
	for i, c := range chain {
		zc, err := zx509.ParseCertificate(c.Raw)
		if err != nil {
			// zcrypto is stricter than crypto/x509 in places: report it.
			out = append(out, Finding{Cert: i, Lint: "parse", Status: "error", Description: "zcrypto cannot parse the certificate: " + err.Error()})
			continue
		}
		for _, l := range r.CertificateLints().Lints() {
			name, res := l.Name, l.Execute(zc, r.GetConfiguration())
			var status string
			switch res.Status {
			case lint.Error:
				status = "error"
			case lint.Fatal:
				status = "fatal"
			case lint.Warn:
				status = "warn"
			case lint.Notice:
				status = "notice"
			default:
				continue
			}
			f := Finding{Cert: i, Lint: name, Status: status, Description: l.Description, Citation: l.Citation, Source: string(l.Source)}
			if res.Details != "" {
				f.Description += " (" + res.Details + ")"
			}
			out = append(out, f)
		}
	}
	rank := map[string]int{"fatal": 0, "error": 1, "warn": 2, "notice": 3}
	sort.Slice(out, func(a, b int) bool {
		if rank[out[a].Status] != rank[out[b].Status] {
			return rank[out[a].Status] < rank[out[b].Status]
		}
		if out[a].Cert != out[b].Cert {
			return out[a].Cert < out[b].Cert
		}
		return out[a].Lint < out[b].Lint
	})
	return out, nil
}

// Summary joins findings for evidence text.
func Summary(fs []Finding) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = f.String()
	}
	return strings.Join(parts, "; ")
}
