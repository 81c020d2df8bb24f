// Command harden-plugin-tlsfile is a test-only plugin for a TLS service
// that reads its certificate from files and reloads on a command the
// policy gives (reload_command, e.g. kill -HUP). It trusts that command —
// it confirms nothing itself — so `harden rotate`'s verify gate is what
// notices a reload that does not take (reload_command: [true]).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"

	"github.com/harden-dev/harden/shared/probe"
	"github.com/harden-dev/harden/shared/sdk"
	"github.com/harden-dev/harden/shared/sdk/applykit"
)

type tlsfile struct{}

type connection struct {
	Address       string   `json:"address"`
	CertFile      string   `json:"cert_file"`
	KeyFile       string   `json:"key_file"`
	ReloadCommand []string `json:"reload_command"`
}

type spec struct{}

func (tlsfile) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version, r.Description = "tlsfile", "0.1.0", "test plugin: a TLS service reloading its certificate files on a command"
}

func (tlsfile) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	r.Connection = []byte(`{"type":"object","additionalProperties":false,"required":["address","cert_file","key_file","reload_command"],
	 "properties":{"address":{"type":"string"},"cert_file":{"type":"string"},"key_file":{"type":"string"},
	 "reload_command":{"type":"array","items":{"type":"string"},"minItems":1}}}`)
	r.Spec = []byte(`{"type":"object","additionalProperties":false}`)
}

func changes(c connection, q sdk.RequestContext) ([]sdk.Change, []byte) {
	cert, _ := os.ReadFile(c.CertFile)
	key, _ := os.ReadFile(c.KeyFile)
	sum := sha256.Sum256(append(cert, key...))
	var out []sdk.Change
	if !bytes.Equal(cert, q.Certificates.ChainPEM) || !bytes.Equal(key, q.Certificates.KeyPEM) {
		out = append(out, sdk.Change{Resource: c.CertFile, Action: sdk.Update, Description: "certificate and key files, then the reload command"})
	}
	return out, sum[:]
}

func (tlsfile) Plan(_ context.Context, q sdk.PlanRequest, r *sdk.PlanResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	r.Changes, r.PlanToken = changes(c, q.RequestContext)
}

func (tlsfile) Apply(ctx context.Context, q sdk.ApplyRequest, r *sdk.ApplyResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	ch, token := changes(c, q.RequestContext)
	if len(q.PlanToken) > 0 && !bytes.Equal(token, q.PlanToken) {
		r.Diagnostics.AddError("the files changed since the plan", "")
		return
	}
	if len(ch) == 0 {
		return
	}
	if err := applykit.WriteFile(c.KeyFile, q.Certificates.KeyPEM, 0o600, nil); err != nil {
		r.Diagnostics.AddError("write the key", err.Error())
		return
	}
	if err := applykit.WriteFile(c.CertFile, q.Certificates.ChainPEM, 0o644, nil); err != nil {
		r.Diagnostics.AddError("write the certificate", err.Error())
		return
	}
	if _, err := applykit.Run(ctx, c.ReloadCommand, applykit.RunOptions{}); err != nil {
		r.Diagnostics.AddError("reload command", err.Error())
		return
	}
	r.Applied = ch
}

func (tlsfile) Inventory(ctx context.Context, q sdk.InventoryRequest, r *sdk.InventoryResponse) {
	c, _, ok := sdk.Decode[connection, spec](q.Target, &r.Diagnostics)
	if !ok {
		return
	}
	pt, _, err := probe.ForRequest(q.RequestContext, probe.TLS)
	if err != nil {
		r.Diagnostics.AddError("trust material", err.Error())
		return
	}
	pt.Address = c.Address
	r.Listeners = append(r.Listeners, probe.Served(ctx, pt, "tls", q.Handshakes, probe.Options{}))
}

func main() { sdk.Serve(tlsfile{}) }
