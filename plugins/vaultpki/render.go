package main

import (
	"context"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/sdk"
)

// aclPolicy is one least-privilege Vault policy harden writes, and the
// AppRole role that logs in with it.
type aclPolicy struct {
	name, purpose, hcl string
}

// policies: the certificate issuer (sign CSRs with the roles, also by an
// explicit issuer during a CA rotation, read the CA chain and CRL), the verifier (read-only, plus signing one short leaf for
// the lint check and sudo to read audit devices), and one user per KEK
// (data keys, decrypt, rewrap — no key management).
func policies(st *settings) []aclPolicy {
	var issuer, verifier strings.Builder
	for _, m := range st.pkiMounts() {
		fmt.Fprintf(&issuer, "path %q { capabilities = [\"read\"] }\npath %q { capabilities = [\"read\"] }\n", m+"/cert/ca", m+"/crl/pem")
		fmt.Fprintf(&verifier, "path %q { capabilities = [\"read\"] }\npath %q { capabilities = [\"read\"] }\n", m+"/cert/ca", m+"/config/urls")
	}
	for _, r := range roleSpecs(st) {
		fmt.Fprintf(&issuer, "path %q { capabilities = [\"update\"] }\n", st.intMount+"/sign/"+r.name)
		// During a staged CA rotation: sign with the next or the current
		// intermediate by its issuer id (IssueCertificateRequest.Issuer).
		fmt.Fprintf(&issuer, "path %q { capabilities = [\"update\"] }\n", st.intMount+"/issuer/+/sign/"+r.name)
	}
	fmt.Fprintf(&verifier, `path %q { capabilities = ["list"] }
path %q { capabilities = ["read"] }
path %q { capabilities = ["read"] }
path %q { capabilities = ["list"] }
path %q { capabilities = ["read"] }
path %q { capabilities = ["update"] }
path "sys/audit" { capabilities = ["read", "sudo"] }
`, st.intMount+"/roles", st.intMount+"/roles/*", st.intMount+"/config/auto-tidy", st.intMount+"/certs", st.intMount+"/cert/*", st.intMount+"/sign/"+st.serverRole)
	verifier.WriteString(verifierClientPaths(st))
	out := []aclPolicy{
		{"harden-issuer", "signs CSRs for the policy's targets", issuer.String()},
		{"harden-verify", "reads PKI, transit and audit state for harden verify", verifier.String()},
	}
	if st.spec.Transit != nil {
		for _, k := range st.spec.Transit.Keys {
			fmt.Fprintf(&verifier, "path %q { capabilities = [\"read\"] }\n", st.transitMount+"/keys/"+k)
			out[1].hcl = verifier.String()
			var b strings.Builder
			for _, op := range []string{"datakey/plaintext", "datakey/wrapped", "encrypt", "decrypt", "rewrap"} {
				fmt.Fprintf(&b, "path %q { capabilities = [\"update\"] }\n", st.transitMount+"/"+op+"/"+k)
			}
			fmt.Fprintf(&b, "path %q { capabilities = [\"read\"] }\n", st.transitMount+"/keys/"+k)
			out = append(out, aclPolicy{"harden-kek-" + k, "uses KEK " + k + " (data keys, decrypt, rewrap; no key management)", b.String()})
		}
	}
	return out
}

// listenerHCL is Vault's listener as apply writes it (listener.go), with
// placeholders for what apply keeps from the operator's file (address,
// certificate and key).
func listenerHCL(q sdk.RequestContext, st *settings) string {
	mtls := q.Policy.InMTLSScope(q.Target.Name)
	clientCA := "/etc/vault/tls/client-ca.pem"
	if st.spec.Listener != nil && st.spec.Listener.ClientCAFile != "" {
		clientCA = st.spec.Listener.ClientCAFile
	}
	want, managed, _, err := listenerWant(st.profile, mtls, clientCA)
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	lf, _ := parseListener("template", []byte("listener \"tcp\" {\n  address = \"0.0.0.0:8200\"\n  tls_cert_file = \"/etc/vault/tls/vault.pem\"\n  tls_key_file = \"/etc/vault/tls/vault-key.pem\"\n}\n"))
	out, err := lf.render("# Vault listener with the "+st.profile.Name+" TLS profile (rendered by harden). Address and certificate\n"+
		"# are placeholders: keep yours. Vault reads these settings only at start-up (SIGHUP reloads\n"+
		"# just the certificate files): put the file in Vault's config directory and RESTART Vault.\n", want, managed)
	if err != nil {
		return "# " + err.Error() + "\n"
	}
	return string(out)
}

// Render writes the ACL policies harden uses, and a listener stanza.
func (vaultPKI) Render(_ context.Context, q sdk.RenderRequest, r *sdk.RenderResponse) {
	st, ok := load(q.RequestContext, &r.Diagnostics)
	if !ok {
		return
	}
	for _, p := range policies(st) {
		r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: "vault/policies/" + p.name + ".hcl", Content: []byte("# " + p.purpose + "\n" + p.hcl), Mode: 0o644, Description: "Vault ACL policy: " + p.purpose})
	}
	r.Artifacts = append(r.Artifacts, clientPolicyArtifacts(st)...)
	r.Artifacts = append(r.Artifacts, sdk.Artifact{Path: "vault/listener.hcl", Content: []byte(listenerHCL(q.RequestContext, st)), Mode: 0o644, Description: "Vault listener with the profile's TLS versions and suites"})
}

// policySteps writes the ACL policies and an AppRole role for each, so that
// routine runs log in with least privilege instead of the bootstrap token.
func policySteps(ctx context.Context, cl *vault.Client, st *settings) ([]step, error) {
	var steps []step
	for _, p := range policies(st) {
		cur, err := cl.Sys().GetPolicyWithContext(ctx, p.name)
		if err != nil {
			return nil, fmt.Errorf("read policy %s: %w", p.name, err)
		}
		if strings.TrimSpace(cur) != strings.TrimSpace(p.hcl) {
			action := sdk.Create
			if cur != "" {
				action = sdk.Update
			}
			steps = append(steps, step{
				change: sdk.Change{Resource: "ACL policy " + p.name, Action: action, After: p.purpose},
				needs:  map[string]string{"sys/policies/acl/" + p.name: "update"},
				apply:  func(ctx context.Context) error { return cl.Sys().PutPolicyWithContext(ctx, p.name, p.hcl) },
				undo: func(ctx context.Context) error {
					if cur == "" {
						return cl.Sys().DeletePolicyWithContext(ctx, p.name)
					}
					return cl.Sys().PutPolicyWithContext(ctx, p.name, cur)
				},
			})
		}
	}
	auths, err := cl.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list auth methods: %w", err)
	}
	mount := orStr(st.conn.AppRoleMount, "approle")
	fresh := false
	if _, ok := auths[mount+"/"]; !ok {
		fresh = true
		steps = append(steps, step{
			change: sdk.Change{Resource: "auth method " + mount, Action: sdk.Create, After: "approle (routine runs log in with least privilege)"},
			needs:  map[string]string{"sys/auth/" + mount: "sudo"},
			apply: func(ctx context.Context) error {
				return cl.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &vault.EnableAuthOptions{Type: "approle"})
			},
			undo: func(ctx context.Context) error { return cl.Sys().DisableAuthWithContext(ctx, mount) },
		})
	}
	for _, p := range policies(st) {
		want := map[string]any{"token_policies": []any{p.name}, "token_ttl": "3600", "token_max_ttl": "3600", "secret_id_ttl": "0", "token_no_default_policy": false}
		path := "auth/" + mount + "/role/" + p.name
		live := map[string]any{}
		if !fresh {
			if s, err := cl.Logical().ReadWithContext(ctx, path); err == nil && s != nil {
				live = s.Data
			}
		}
		if len(live) == 0 {
			steps = append(steps, step{
				change: sdk.Change{Resource: "AppRole " + path, Action: sdk.Create, After: "token_policies=" + p.name + " token_ttl=1h"},
				needs:  map[string]string{path: "create"},
				apply:  func(ctx context.Context) error { _, err := cl.Logical().WriteWithContext(ctx, path, want); return err },
				undo:   func(ctx context.Context) error { _, err := cl.Logical().DeleteWithContext(ctx, path); return err },
			})
			continue
		}
		steps = append(steps, writeStep(cl, "AppRole "+path, path, want, live, false)...)
	}
	return steps, nil
}
