package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

// step is one change apply makes, with what it needs and how to undo it.
type step struct {
	change sdk.Change
	// needs: Vault paths and the capability each step uses (checked with
	// sys/capabilities-self before anything changes).
	needs map[string]string
	// phase names the step's journal boundary ("" is step-<n>).
	phase string
	apply func(context.Context) error
	undo  func(context.Context) error
}

// desired reads the live Vault and lists the steps that bring it to the
// policy. Warnings (things apply will not do) go on d.
func desired(ctx context.Context, cl *vault.Client, st *settings, d *sdk.Diagnostics) ([]step, error) {
	lg := cl.Logical()
	var steps []step
	// The audit device first: every later change is audited.
	if st.auditPath != "" {
		devices, err := cl.Sys().ListAuditWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("list audit devices: %w", err)
		}
		cur, ok := devices[st.auditPath+"/"]
		switch {
		case !ok:
			path := st.auditPath
			steps = append(steps, step{
				change: sdk.Change{Resource: "audit device " + path, Action: sdk.Create, After: "file " + st.auditFile},
				needs:  map[string]string{"sys/audit/" + path: "sudo"},
				apply: func(ctx context.Context) error {
					return cl.Sys().EnableAuditWithOptionsWithContext(ctx, path, &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": st.auditFile}})
				},
				undo: func(ctx context.Context) error { return cl.Sys().DisableAuditWithContext(ctx, path) },
			})
		case cur.Type != "file" || cur.Options["file_path"] != st.auditFile:
			d.AddWarning("audit device "+st.auditPath+" exists with other settings", fmt.Sprintf("type %s, file_path %q; harden does not replace audit devices: disable it by hand to let apply create the file device", cur.Type, cur.Options["file_path"]))
		}
	}
	mounts, err := cl.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	newMounts := map[string]bool{}
	mountStep := func(path, typ string, maxTTL time.Duration) error {
		cur, ok := mounts[path+"/"]
		want := fmt.Sprintf("%dh", int(maxTTL.Hours()))
		switch {
		case !ok:
			newMounts[path] = true
			steps = append(steps, step{
				change: sdk.Change{Resource: "mount " + path, Action: sdk.Create, After: typ + ", max_lease_ttl " + want},
				needs:  map[string]string{"sys/mounts/" + path: "create"},
				apply: func(ctx context.Context) error {
					return cl.Sys().MountWithContext(ctx, path, &vault.MountInput{Type: typ, Config: vault.MountConfigInput{MaxLeaseTTL: want}})
				},
				undo: func(ctx context.Context) error { return cl.Sys().UnmountWithContext(ctx, path) },
			})
		case cur.Type != typ:
			return fmt.Errorf("mount %s is a %s engine, not %s: choose another mount path in the spec", path, cur.Type, typ)
		case time.Duration(cur.Config.MaxLeaseTTL)*time.Second < maxTTL:
			before := fmt.Sprintf("%ds", cur.Config.MaxLeaseTTL)
			steps = append(steps, step{
				change: sdk.Change{Resource: "mount " + path + " max_lease_ttl", Action: sdk.Update, Before: before, After: want},
				needs:  map[string]string{"sys/mounts/" + path + "/tune": "update"},
				apply: func(ctx context.Context) error {
					_, err := lg.WriteWithContext(ctx, "sys/mounts/"+path+"/tune", map[string]any{"max_lease_ttl": want})
					return err
				},
				undo: func(ctx context.Context) error {
					_, err := lg.WriteWithContext(ctx, "sys/mounts/"+path+"/tune", map[string]any{"max_lease_ttl": before})
					return err
				},
			})
		}
		return nil
	}
	if !st.external() {
		if err := mountStep(st.rootMount, "pki", st.rootTTL); err != nil {
			return nil, err
		}
	}
	if err := mountStep(st.intMount, "pki", st.intTTL); err != nil {
		return nil, err
	}
	// CAs: generated once, never re-generated.
	rootPEM := ""
	if !newMounts[st.rootMount] && !st.external() {
		if rootPEM, err = caPEM(ctx, cl, st.rootMount); err != nil {
			return nil, err
		}
	}
	if rootPEM == "" && !st.external() {
		steps = append(steps, step{
			change: sdk.Change{Resource: "root CA in " + st.rootMount, Action: sdk.Create, After: fmt.Sprintf("%q, %s %d, %s", st.rootCN, st.keyType, st.keyBits, st.rootTTL)},
			needs:  map[string]string{st.rootMount + "/root/generate/internal": "update"},
			apply: func(ctx context.Context) error {
				_, err := lg.WriteWithContext(ctx, st.rootMount+"/root/generate/internal", map[string]any{"common_name": st.rootCN,
					"key_type": st.keyType, "key_bits": st.keyBits, "ttl": fmt.Sprintf("%dh", int(st.rootTTL.Hours())), "issuer_name": "harden-root"})
				return err
			},
			undo: func(ctx context.Context) error { _, err := lg.DeleteWithContext(ctx, st.rootMount+"/root"); return err },
		})
	}
	intPEM := ""
	if !newMounts[st.intMount] {
		if intPEM, err = caPEM(ctx, cl, st.intMount); err != nil {
			return nil, err
		}
	}
	switch {
	case intPEM != "":
	case st.external():
		steps = append(steps, externalIntermediate(cl, st, d)...)
	default:
		steps = append(steps, step{
			change: sdk.Change{Resource: "intermediate CA in " + st.intMount, Action: sdk.Create, After: fmt.Sprintf("%q signed by the root, %s %d, %s", st.intCN, st.keyType, st.keyBits, st.intTTL)},
			needs: map[string]string{st.intMount + "/intermediate/generate/internal": "update", st.rootMount + "/root/sign-intermediate": "update",
				st.intMount + "/intermediate/set-signed": "update"},
			apply: func(ctx context.Context) error { return makeIntermediate(ctx, cl, st) },
			undo:  func(ctx context.Context) error { _, err := lg.DeleteWithContext(ctx, st.intMount+"/root"); return err },
		})
	}
	for _, m := range st.pkiMounts() {
		want := map[string]any{"issuing_certificates": []any{st.urlBase + "/v1/" + m + "/ca"}, "crl_distribution_points": []any{st.urlBase + "/v1/" + m + "/crl"}}
		steps = append(steps, configStep(ctx, cl, "issuer URLs of "+m, m+"/config/urls", want, newMounts[m])...)
	}
	// Roles on the intermediate mount.
	for _, r := range roleSpecs(st) {
		steps = append(steps, roleStep(ctx, cl, st.intMount, r.name, r.fields, newMounts[st.intMount])...)
	}
	tidy := map[string]any{"enabled": true, "tidy_cert_store": true, "tidy_revoked_certs": true, "tidy_expired_issuers": true,
		"interval_duration": json.Number("43200"), "safety_buffer": json.Number("259200")}
	steps = append(steps, configStep(ctx, cl, "auto-tidy of "+st.intMount, st.intMount+"/config/auto-tidy", tidy, newMounts[st.intMount])...)
	// Transit KEKs.
	if st.spec.Transit != nil && len(st.spec.Transit.Keys) > 0 {
		if err := mountStep(st.transitMount, "transit", 0); err != nil {
			return nil, err
		}
		for _, k := range st.spec.Transit.Keys {
			ks, err := transitSteps(ctx, cl, st, k, newMounts[st.transitMount], d)
			if err != nil {
				return nil, err
			}
			steps = append(steps, ks...)
		}
	}
	// The clients' KV mounts and ACL policies (clients.go).
	cs, err := clientSteps(ctx, cl, st, mounts)
	if err != nil {
		return nil, err
	}
	steps = append(steps, cs...)
	ps, err := policySteps(ctx, cl, st)
	if err != nil {
		return nil, err
	}
	return append(steps, ps...), nil
}

// externalIntermediate: an intermediate signed by an enterprise CA outside
// Vault. Apply writes Vault's CSR to csr_file and stops there; once the
// operator put the signed chain (intermediate first, then up to the root)
// into certificate_file, the next apply sets it. Vault keeps the pending key,
// so the CSR is made once.
func externalIntermediate(cl *vault.Client, st *settings, d *sdk.Diagnostics) []step {
	ext := st.spec.PKI.ExternalIntermediate
	if chain, err := sdk.ReadFile(ext.CertificateFile); err == nil {
		return []step{{
			change: sdk.Change{Resource: "intermediate CA in " + st.intMount, Action: sdk.Create, After: "signed outside Vault: " + ext.CertificateFile},
			needs:  map[string]string{st.intMount + "/intermediate/set-signed": "update"},
			apply: func(ctx context.Context) error {
				_, err := cl.Logical().WriteWithContext(ctx, st.intMount+"/intermediate/set-signed", map[string]any{"certificate": string(chain)})
				return err
			},
		}}
	}
	if _, err := os.Stat(ext.CSRFile); err == nil {
		d.AddWarning("the intermediate CA of "+st.intMount+" waits for its signed certificate",
			"sign "+ext.CSRFile+" with your CA and save the chain (intermediate first) as "+ext.CertificateFile+", then apply again")
		return nil
	}
	return []step{{
		change: sdk.Change{Resource: "intermediate CSR for " + st.intMount, Action: sdk.Create, After: ext.CSRFile,
			Description: "sign it with your CA, save the chain as " + ext.CertificateFile + " and apply again"},
		needs: map[string]string{st.intMount + "/intermediate/generate/internal": "update"},
		apply: func(ctx context.Context) error {
			s, err := cl.Logical().WriteWithContext(ctx, st.intMount+"/intermediate/generate/internal", map[string]any{"common_name": st.intCN, "key_type": st.keyType, "key_bits": st.keyBits})
			if err != nil {
				return err
			}
			// Atomic (applykit.WriteFile): a half-written CSR is never
			// what the operator sends to the CA. Public: 0644.
			return applykit.WriteFile(ext.CSRFile, []byte(fmt.Sprint(s.Data["csr"])+"\n"), 0o644, nil)
		},
	}}
}

// caPEM reads a PKI mount's CA certificate ("" when it has none).
func caPEM(ctx context.Context, cl *vault.Client, mount string) (string, error) {
	s, err := cl.Logical().ReadWithContext(ctx, mount+"/cert/ca")
	if err != nil {
		var re *vault.ResponseError
		if errors.As(err, &re) && (re.StatusCode == 404 || re.StatusCode == 400) {
			return "", nil
		}
		return "", fmt.Errorf("read %s/cert/ca: %w", mount, err)
	}
	if s == nil {
		return "", nil
	}
	pem, _ := s.Data["certificate"].(string)
	return strings.TrimSpace(pem), nil
}

// makeIntermediate: key and CSR generated inside Vault's intermediate
// mount, signed by the root, the signed certificate (with the root) set.
func makeIntermediate(ctx context.Context, cl *vault.Client, st *settings) error {
	lg := cl.Logical()
	s, err := lg.WriteWithContext(ctx, st.intMount+"/intermediate/generate/internal", map[string]any{"common_name": st.intCN, "key_type": st.keyType, "key_bits": st.keyBits})
	if err != nil {
		return fmt.Errorf("generate the intermediate CSR: %w", err)
	}
	csr, _ := s.Data["csr"].(string)
	s, err = lg.WriteWithContext(ctx, st.rootMount+"/root/sign-intermediate", map[string]any{"csr": csr, "common_name": st.intCN,
		"ttl": fmt.Sprintf("%dh", int(st.intTTL.Hours())), "format": "pem_bundle", "use_csr_values": false})
	if err != nil {
		return fmt.Errorf("sign the intermediate with the root: %w", err)
	}
	cert, _ := s.Data["certificate"].(string)
	if _, err := lg.WriteWithContext(ctx, st.intMount+"/intermediate/set-signed", map[string]any{"certificate": cert}); err != nil {
		return fmt.Errorf("set the signed intermediate: %w", err)
	}
	return nil
}

type roleSpec struct {
	name   string
	fields map[string]any
}

// roleSpecs: a server role for the policy's targets and a client role for
// harden's and the clients' identities; max_ttl from the rotation policy,
// no wildcard, glob or any-name issuing.
func roleSpecs(st *settings) []roleSpec {
	common := func() map[string]any {
		return map[string]any{"key_type": st.keyType, "key_bits": json.Number(fmt.Sprint(st.keyBits)), "max_ttl": json.Number(fmt.Sprint(int(st.maxTTL.Seconds()))),
			"allow_any_name": false, "allow_glob_domains": false, "allow_subdomains": false, "allow_bare_domains": true,
			"allow_wildcard_certificates": st.spec.PKI.AllowWildcards, "key_usage": []any{"DigitalSignature"}, "use_csr_common_name": true, "use_csr_sans": true}
	}
	// role: the common fields, the names it may issue, and its purpose; a
	// server (or peer) role issues hostnames and IPs, a client role names.
	role := func(names []string, server, client bool) map[string]any {
		r := common()
		r["allowed_domains"] = toAny(names)
		r["allow_localhost"], r["allow_ip_sans"], r["enforce_hostnames"] = server, server, server
		r["server_flag"], r["client_flag"] = server, client
		return r
	}
	server := role(st.serverNames, true, false)
	client := role(st.clientNames, false, true)
	// A node that is server and client at once (a Kafka broker under mTLS).
	peer := role(st.serverNames, true, true)
	return []roleSpec{{st.serverRole, server}, {st.clientRole, client}, {st.serverRole + "-peer", peer}}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// differs lists the keys of want whose live value differs.
func differs(live, want map[string]any) []string {
	var out []string
	for k, w := range want {
		if !sameValue(live[k], w) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// sameValue compares a wanted value with what Vault returned (numbers as
// json.Number, durations as seconds, lists of strings).
func sameValue(live, want any) bool {
	norm := func(v any) string {
		switch x := v.(type) {
		case nil:
			return ""
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			sort.Strings(parts)
			return strings.Join(parts, ",")
		case []string:
			return strings.Join(slices.Sorted(slices.Values(x)), ",")
		}
		return fmt.Sprint(v)
	}
	return norm(live) == norm(want)
}

// configStep writes a config endpoint when its managed values differ;
// undo writes the previous values back.
func configStep(ctx context.Context, cl *vault.Client, what, path string, want map[string]any, fresh bool) []step {
	live := map[string]any{}
	if !fresh {
		if s, err := cl.Logical().ReadWithContext(ctx, path); err == nil && s != nil {
			live = s.Data
		}
	}
	return writeStep(cl, what, path, want, live, fresh)
}

// writeStep writes path when the managed values differ from live.
func writeStep(cl *vault.Client, what, path string, want, live map[string]any, fresh bool) []step {
	diff := differs(live, want)
	if len(diff) == 0 {
		return nil
	}
	before := map[string]any{}
	for _, k := range diff {
		before[k] = live[k]
	}
	return []step{{
		change: sdk.Change{Resource: what, Action: sdk.Update, Before: summary(before, diff), After: summary(want, diff)},
		needs:  map[string]string{path: "update"},
		apply:  func(ctx context.Context) error { _, err := cl.Logical().WriteWithContext(ctx, path, want); return err },
		undo: func(ctx context.Context) error {
			if fresh || len(live) == 0 {
				return nil
			}
			_, err := cl.Logical().WriteWithContext(ctx, path, before)
			return err
		},
	}}
}

// roleStep creates a role or patches its managed fields (fields harden
// does not manage are kept).
func roleStep(ctx context.Context, cl *vault.Client, mount, name string, want map[string]any, fresh bool) []step {
	path := mount + "/roles/" + name
	var live map[string]any
	if !fresh {
		if s, err := cl.Logical().ReadWithContext(ctx, path); err == nil && s != nil {
			live = s.Data
		}
	}
	if live == nil {
		return []step{{
			change: sdk.Change{Resource: "role " + path, Action: sdk.Create, After: summary(want, keys(want))},
			needs:  map[string]string{path: "create"},
			apply:  func(ctx context.Context) error { _, err := cl.Logical().WriteWithContext(ctx, path, want); return err },
			undo:   func(ctx context.Context) error { _, err := cl.Logical().DeleteWithContext(ctx, path); return err },
		}}
	}
	diff := differs(live, want)
	if len(diff) == 0 {
		return nil
	}
	patch, before := map[string]any{}, map[string]any{}
	for _, k := range diff {
		patch[k], before[k] = want[k], live[k]
	}
	return []step{{
		change: sdk.Change{Resource: "role " + path, Action: sdk.Update, Before: summary(before, diff), After: summary(patch, diff)},
		needs:  map[string]string{path: "patch"},
		apply:  func(ctx context.Context) error { _, err := cl.Logical().JSONMergePatch(ctx, path, patch); return err },
		undo:   func(ctx context.Context) error { _, err := cl.Logical().JSONMergePatch(ctx, path, before); return err },
	}}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func summary(m map[string]any, ks []string) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// transitSteps: the KEK exists as aes256-gcm96, rotates automatically and
// cannot be deleted. exportable and allow_plaintext_backup can never be
// turned off again: plan says the key needs replacing instead.
func transitSteps(ctx context.Context, cl *vault.Client, st *settings, key string, fresh bool, d *sdk.Diagnostics) ([]step, error) {
	path := st.transitMount + "/keys/" + key
	cfg := map[string]any{"auto_rotate_period": json.Number(fmt.Sprint(int(st.maxTTL.Seconds()))), "deletion_allowed": false}
	var live map[string]any
	if !fresh {
		s, err := cl.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("read transit key %s: %w", key, err)
		}
		if s != nil {
			live = s.Data
		}
	}
	if live == nil {
		return []step{{
			change: sdk.Change{Resource: "transit key " + path, Action: sdk.Create, After: "aes256-gcm96, auto_rotate_period " + st.maxTTL.String() + ", deletion not allowed"},
			needs:  map[string]string{path: "create", path + "/config": "update"},
			apply: func(ctx context.Context) error {
				if _, err := cl.Logical().WriteWithContext(ctx, path, map[string]any{"type": "aes256-gcm96"}); err != nil {
					return err
				}
				_, err := cl.Logical().WriteWithContext(ctx, path+"/config", cfg)
				return err
			},
			undo: func(ctx context.Context) error {
				if _, err := cl.Logical().WriteWithContext(ctx, path+"/config", map[string]any{"deletion_allowed": true}); err != nil {
					return err
				}
				_, err := cl.Logical().DeleteWithContext(ctx, path)
				return err
			},
		}}, nil
	}
	if t, _ := live["type"].(string); t != "aes256-gcm96" {
		d.AddWarning("transit key "+key+" is "+t, "harden expects aes256-gcm96; the type of a key cannot change: create a new key")
	}
	for _, flag := range []string{"exportable", "allow_plaintext_backup"} {
		if b, _ := live[flag].(bool); b {
			d.AddWarning("transit key "+key+" needs a new key: "+flag+" is on", "Vault cannot turn "+flag+" off again; create a new key, rewrap to it, and retire this one")
		}
	}
	// keys/<k>/config is write-only: the key's own read holds its settings.
	return writeStep(cl, "transit key "+key+" config", path+"/config", cfg, live, false), nil
}

// checkCapabilities: every path the steps use must be allowed to the
// token before anything changes (a weak token changes nothing).
func checkCapabilities(ctx context.Context, cl *vault.Client, steps []step) error {
	needs := map[string]string{}
	for _, s := range steps {
		for p, c := range s.needs {
			needs[p] = c
		}
	}
	if len(needs) == 0 {
		return nil
	}
	paths := keys(toAnyMap(needs))
	var missing []string
	for _, p := range paths {
		c, err := cl.Sys().CapabilitiesSelfWithContext(ctx, p)
		if err != nil {
			return fmt.Errorf("sys/capabilities-self for %s: %w", p, err)
		}
		if !slices.Contains(c, "root") && !slices.Contains(c, needs[p]) && !(needs[p] == "create" && slices.Contains(c, "update")) {
			missing = append(missing, fmt.Sprintf("%s needs %s (token has %v)", p, needs[p], c))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the Vault token lacks capabilities, nothing was changed: %s", strings.Join(missing, "; "))
	}
	return nil
}

func toAnyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
