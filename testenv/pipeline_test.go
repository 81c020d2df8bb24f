package testenv

import (
	"os"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func TestLocalizePipelineExample(t *testing.T) {
	example, err := os.ReadFile("../examples/pipeline/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ex map[string]any
	if err := yaml.Unmarshal(example, &ex); err != nil {
		t.Fatal(err)
	}
	// A generated policy with every example target, as policyYAML writes it.
	var gen strings.Builder
	gen.WriteString("apiVersion: harden/v1\nprofile: intermediate\ncertificates:\n  source: vault-pki\n  vault: {target: \"vault\", store_dir: \"/state/certs\"}\ntargets:\n")
	for _, tt := range ex["targets"].([]any) {
		m := tt.(map[string]any)
		gen.WriteString("  - name: " + m["name"].(string) + "\n    plugin: " + m["plugin"].(string) + "\n")
		gen.WriteString("    certificate_names: [\"localhost\"]\n    connection: {address: \"127.0.0.1:1\", note: \"" + m["name"].(string) + "\"}\n")
		if m["name"] == "vault" {
			gen.WriteString("    spec: {audit: {file: \"/state/audit.log\"}, listener: {config_file: \"/state/listener.hcl\", restart_command: [\"/bin/true\", \"restart\"]}, pki: {client_names: [\"harden-admin\", \"harden-probe\"], external_intermediate: {csr_file: \"/state/x.csr\", certificate_file: \"/state/x.pem\"}}, transit: {keys: [\"lake-kek\"]}}\n")
		}
	}
	out, err := LocalizePolicy(example, []byte(gen.String()), "/state")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if v := got["certificates"].(map[string]any)["vault"].(map[string]any); v["store_dir"] != "/state/certs" {
		t.Errorf("certificates.vault = %v", v)
	}
	if r := got["certificates"].(map[string]any)["rotation"].(map[string]any); r["max_lifetime"] != "30d" {
		t.Errorf("the example's rotation was not kept: %v", r)
	}
	for _, tt := range got["targets"].([]any) {
		m := tt.(map[string]any)
		c := m["connection"].(map[string]any)
		if c["note"] != m["name"] || c["address"] != "127.0.0.1:1" {
			t.Errorf("%s: connection %v not the env's", m["name"], c)
		}
		if n := m["certificate_names"]; n != nil && n.([]any)[0] != "localhost" {
			t.Errorf("%s: certificate_names %v", m["name"], n)
		}
		if m["name"] == "vault" {
			pki := m["spec"].(map[string]any)["pki"].(map[string]any)
			names := pki["client_names"].([]any)
			if len(names) != 4 || names[1] != "spark-etl" || names[3] != "harden-probe" {
				t.Errorf("client names not joined: %v", names)
			}
			if rc := m["spec"].(map[string]any)["listener"].(map[string]any)["restart_command"].([]any); len(rc) != 2 || rc[0] != "/bin/true" {
				t.Errorf("the restart command is the env's, not joined with the example's: %v", rc)
			}
			if pki["external_intermediate"].(map[string]any)["csr_file"] != "/state/x.csr" {
				t.Errorf("external_intermediate not the env's: %v", pki)
			}
		}
		if m["name"] == "lake" {
			if e := m["spec"].(map[string]any)["envelope"].(map[string]any); e["prefix"] != "curated/" {
				t.Errorf("the example's envelope spec was lost: %v", e)
			}
		}
	}
	if d := got["clients"].([]any)[0].(map[string]any)["deliver"].(map[string]any)["dir"]; d != "/state/clients/spark-etl" {
		t.Errorf("delivery dir %v", d)
	}
	if !strings.Contains(string(out), "# The seed's pipeline") {
		t.Error("comments dropped")
	}
	// A target of the same name but another plugin is not the same server.
	if _, err := LocalizePolicy(example, []byte(strings.Replace(gen.String(), "plugin: kafka", "plugin: postgres", 1)), "/state"); err == nil || !strings.Contains(err.Error(), "events is plugin kafka") {
		t.Errorf("plugin mismatch: %v", err)
	}
	// A target the env does not run is an error naming it.
	if _, err := LocalizePolicy(example, []byte("apiVersion: harden/v1\ntargets: []\n"), "/state"); err == nil || !strings.Contains(err.Error(), "vault") {
		t.Errorf("missing target: %v", err)
	}
}
