package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/sdk"
)

// IssueCertificate makes Vault the certificate source of other targets: it
// signs the CSR the host made (the private key never reaches Vault) with
// the role for the usage, and returns the chain, the root as the trust
// bundle and the CRLs of the intermediate and the root (PostgreSQL checks
// the CRL of every CA in the chain). Usage "ca" returns the bundle and CRLs
// only, so the host can tell whether a stored certificate still chains.
//
// During a staged CA rotation (RotateCA), Issuer "next" signs with the
// next intermediate and "current" with the one the current root signed;
// the trust bundle stays the current root until finish, and the CRLs are
// those of all four CAs. Issuer "next" is refused without a prepared next
// CA.
func (vaultPKI) IssueCertificate(ctx context.Context, q sdk.IssueCertificateRequest, r *sdk.IssueCertificateResponse) {
	st, cl, ok := connect(ctx, q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	rootPEM, err := trustAnchor(ctx, cl, st)
	if err == nil && rootPEM == "" {
		err = fmt.Errorf("mount %s has no CA yet: run harden apply --target %s first", st.pkiMounts()[0], q.Target.Name)
	}
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.issue", "no CA to issue from", err)
		return
	}
	signPath, crlPaths, err := issuerFor(ctx, cl, st, q.Issuer)
	if err != nil {
		r.Diagnostics.AddTargetError("vaultpki.issue", "no CA to issue from", err)
		return
	}
	var crls []string
	for _, p := range crlPaths {
		raw, err := cl.Logical().ReadRawWithContext(ctx, p)
		if err == nil && raw.StatusCode == 200 {
			if b, rerr := io.ReadAll(io.LimitReader(raw.Body, 16<<20)); rerr == nil {
				crls = append(crls, strings.TrimSpace(string(b)))
			}
		}
		if raw != nil {
			raw.Body.Close()
		}
	}
	r.Certificate.CABundlePEM = []byte(rootPEM + "\n")
	// Only with the CRL of every CA in the chain (PostgreSQL checks them
	// all): an enterprise root's CRL is not in Vault.
	if len(crls) == len(crlPaths) && len(crls) >= 2 {
		r.Certificate.CRLPEM = []byte(strings.Join(crls, "\n") + "\n")
	}
	if q.Usage == "ca" {
		return
	}
	role := map[string]string{"server": st.serverRole, "client": st.clientRole, "peer": st.serverRole + "-peer"}[q.Usage]
	if role == "" {
		r.Diagnostics.AddError("unknown certificate usage "+q.Usage, "use server, client, peer or ca")
		return
	}
	block, _ := pem.Decode(q.CSRPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		r.Diagnostics.AddError("a CSR is needed", "keys are made where they are used: send a PEM CERTIFICATE REQUEST")
		return
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		r.Diagnostics.AddError("invalid CSR", fmt.Sprint(err))
		return
	}
	// The client role's names are these too; said here in harden's words
	// rather than as the role's refusal.
	if q.Usage == "client" && !slices.Contains(st.clientNames, csr.Subject.CommonName) {
		r.Diagnostics.AddError("client certificate refused: CN "+strconv.Quote(csr.Subject.CommonName)+" is not a client identity",
			"the client role issues the policy's clients (clients:) and spec.pki.client_names only: "+strings.Join(st.clientNames, ", ")+"; add the client to the policy")
		return
	}
	ttl := q.TTL
	if ttl <= 0 || ttl > st.maxTTL {
		ttl = st.maxTTL
	}
	path := signPath(role)
	s, err := cl.Logical().WriteWithContext(ctx, path, map[string]any{"csr": string(q.CSRPEM), "ttl": fmt.Sprintf("%ds", int(ttl.Seconds()))})
	if err != nil {
		var re *vault.ResponseError
		if errors.As(err, &re) {
			err = fmt.Errorf("%s refused the CSR for %s: %s", path, q.ForTarget, strings.Join(re.Errors, "; "))
		}
		r.Diagnostics.AddTargetError("vaultpki.issue", "Vault did not sign", err)
		return
	}
	// The chain without its root: the current root is the trust bundle,
	// and a next root (signing "next") reaches the targets' bundles
	// through the host, never a served chain.
	chain := []string{fmt.Sprint(s.Data["certificate"])}
	for _, c := range asList(s.Data["ca_chain"]) {
		if pemStr := strings.TrimSpace(fmt.Sprint(c)); pemStr != strings.TrimSpace(rootPEM) && !selfSigned(pemStr) {
			chain = append(chain, pemStr)
		}
	}
	r.Certificate.ChainPEM = []byte(strings.Join(chain, "\n") + "\n")
}

// trustAnchor is the root the issued chains end in: Vault's root mount, or
// the last certificate of the externally signed intermediate's chain.
func trustAnchor(ctx context.Context, cl *vault.Client, st *settings) (string, error) {
	if !st.external() {
		return caPEM(ctx, cl, st.rootMount)
	}
	s, err := cl.Logical().ReadWithContext(ctx, st.intMount+"/cert/ca_chain")
	if err != nil || s == nil {
		return "", err
	}
	rest := []byte(fmt.Sprint(s.Data["certificate"]))
	last := ""
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return last, nil
		}
		last = strings.TrimSpace(string(pem.EncodeToMemory(b)))
	}
}

// selfSigned: the PEM is one certificate that signs itself (a root).
func selfSigned(pemStr string) bool {
	certs, err := sdk.ParseCertificatesPEM([]byte(pemStr))
	if err != nil || len(certs) != 1 {
		return false
	}
	c := certs[0]
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}
