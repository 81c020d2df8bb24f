package policy

import (
	"strings"
	"testing"
)

const clientsBase = `apiVersion: harden/v1
profile: intermediate
certificates:
  source: vault-pki
  vault: {target: vault}
targets:
  - name: vault
    plugin: vaultpki
    connection: {address: "https://127.0.0.1:8200", token_file: ./vault-token}
  - name: events
    plugin: kafka
    connection: {bootstrap: ["127.0.0.1:9093"]}
  - name: warehouse-pg
    plugin: postgres
    connection: {host: 127.0.0.1, port: 5432, user: postgres}
`

func TestClients(t *testing.T) {
	p, err := Parse("/etc/harden/policy.yaml", []byte(clientsBase+`clients:
  - name: spark-etl
    targets: [events, warehouse-pg]
    deliver: {vault_kv: secret/data/clients/spark-etl}
  - name: loader
    targets: [warehouse-pg]
    deliver: {dir: clients/loader}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Clients) != 2 {
		t.Fatalf("clients %+v", p.Clients)
	}
	spark, loader := p.Clients[0], p.Clients[1]
	if spark.Name != "spark-etl" || strings.Join(spark.Targets, ",") != "events,warehouse-pg" || spark.VaultKV != "secret/data/clients/spark-etl" ||
		spark.InstallDir != "/etc/harden/clients/spark-etl" {
		t.Errorf("spark-etl %+v", spark)
	}
	if loader.Dir != "/etc/harden/clients/loader" || loader.InstallDir != loader.Dir || loader.VaultKV != "" {
		t.Errorf("loader %+v", loader)
	}
	ctx := p.Context()
	if c, ok := ctx.Client("spark-etl"); !ok || c.VaultKV != spark.VaultKV || len(c.Targets) != 2 {
		t.Errorf("policy context clients %+v", ctx.Clients)
	}
}

func TestClientsBadInput(t *testing.T) {
	for _, c := range []struct{ name, clients, want string }{
		{"collides with a target", "  - {name: events, targets: [warehouse-pg], deliver: {dir: /x}}\n", "policy.yaml:17:12: clients[0].name: client name \"events\" is also a target's name"},
		{"harden's own name", "  - {name: harden-admin, targets: [events], deliver: {dir: /x}}\n", "harden's own client certificate name"},
		{"unknown target", "  - {name: a-1, targets: [nope], deliver: {dir: /x}}\n", "clients[0].targets[0]: unknown target \"nope\""},
		{"the issuer as a target", "  - {name: a-1, targets: [vault], deliver: {dir: /x}}\n", "is the certificate source"},
		{"duplicate", "  - {name: a-1, targets: [events], deliver: {dir: /x}}\n  - {name: a-1, targets: [events], deliver: {dir: /y}}\n", "already used by clients[0]"},
		{"two deliveries", "  - {name: a-1, targets: [events], deliver: {dir: /x, vault_kv: secret/data/a}}\n", "clients[0].deliver"},
		{"no delivery", "  - {name: a-1, targets: [events], deliver: {}}\n", "clients[0].deliver"},
		{"a KV path that is not mount/data/path", "  - {name: a-1, targets: [events], deliver: {vault_kv: secret/clients/a}}\n", "clients[0].deliver.vault_kv"},
		{"no targets", "  - {name: a-1, targets: [], deliver: {dir: /x}}\n", "clients[0].targets"},
		{"unknown key", "  - {name: a-1, targets: [events], deliver: {dir: /x}, role: admin}\n", "role"},
		{"relative install dir", "  - {name: a-1, targets: [events], deliver: {dir: /x}, install_dir: etc/x}\n", "install_dir"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/harden/policy.yaml", []byte(clientsBase+"clients:\n"+c.clients))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	files := strings.Replace(clientsBase, "  source: vault-pki\n  vault: {target: vault}\n", "  source: files\n  files: {ca_file: ca.pem}\n", 1)
	if _, err := Parse("/etc/harden/policy.yaml", []byte(files+"clients:\n  - {name: a-1, targets: [events], deliver: {dir: /x}}\n")); err == nil || !strings.Contains(err.Error(), "need certificates.source vault-pki") {
		t.Errorf("clients with files source: %v", err)
	}
}
