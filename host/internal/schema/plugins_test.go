package schema

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pluginVerdicts are documents with the verdict the plugins' hand-written
// schemas gave them through this validator (recorded before the schemas
// were derived from the config types): the derived schemas must accept and
// reject alike, with the same attribute paths and messages. The documents
// come from the README examples, the plugins' tests and the edge cases that
// matter (unknown key, wrong type, null, bad enum, pattern, bounds).
var pluginVerdicts = map[string][]struct {
	block, doc string
	want       []string // diagnostics; none: accepted
}{
	"postgres": {
		{"connection", `{"host":"127.0.0.1","port":5432,"user":"postgres","password_env":"PGPASSWORD"}`, nil},
		{"connection", `{"host":"127.0.0.1","port":5432,"socket_dir":"/var/run/postgresql","allow_plaintext_admin":"first apply","database":"postgres","data_dir":"/d","password_file":"pw"}`, nil},
		{"connection", `{"host":"127.0.0.1"}`, []string{`connection: missing required key "port"`}},
		{"connection", `{"host":"","port":5432}`, []string{`connection.host: minLength: got 0, want 1`}},
		{"connection", `{"host":"h","port":0}`, []string{`connection.port: minimum: got 0, want 1`}},
		{"connection", `{"host":"h","port":65536}`, []string{`connection.port: maximum: got 65,536, want 65,535`}},
		{"connection", `{"host":"h","port":"5432"}`, []string{`connection.port: wrong type: got string, want integer`}},
		{"connection", `{"host":"h","port":5432.5}`, []string{`connection.port: wrong type: got number, want integer`}},
		{"connection", `{"host":"h","port":5432,"colour":1}`, []string{`connection.colour: unknown key "colour"`}},
		{"connection", `{"host":"h","port":5432,"socket_dir":""}`, []string{`connection.socket_dir: minLength: got 0, want 1`}},
		{"connection", `{"host":"h","port":5432,"allow_plaintext_admin":""}`, []string{`connection.allow_plaintext_admin: minLength: got 0, want 1`}},
		{"connection", `{"host":"h","port":5432,"user":null}`, []string{`connection.user: wrong type: got null, want string`}},
		{"connection", `[]`, []string{`connection: wrong type: got array, want object`}},
		{"spec", `{}`, nil},
		{"spec", `{"hba":[{"database":"all","user":"all","address":"10.0.0.0/8","method":"scram-sha-256"}],"local":[{"database":"all","user":"postgres","method":"peer"}],"cert_dir":"harden"}`, nil},
		{"spec", `{"hba":[{"type":"hostssl","database":"all","user":"all","address":"::1/128","method":"cert","options":{"clientcert":"verify-full","map":"certmap"}}],"ident_maps":[{"map":"certmap","system_user":"alice","pg_user":"alice"}],"server_version":16}`, nil},
		{"spec", `{"hba":[{"database":"all","user":"all"}]}`, []string{`spec.hba[0]: missing required key "method"`}},
		{"spec", `{"hba":[{"database":"all","user":"all","method":"cert","colour":1}]}`, []string{`spec.hba[0].colour: unknown key "colour"`}},
		{"spec", `{"hba":[{"database":"all","user":"all","method":"cert","options":{"clientcert":1}}]}`, []string{`spec.hba[0].options.clientcert: wrong type: got number, want string`}},
		{"spec", `{"local":[{"user":"all","method":"peer"}]}`, []string{`spec.local[0]: missing required key "database"`}},
		{"spec", `{"hba":{}}`, []string{`spec.hba: wrong type: got object, want array`}},
		{"spec", `{"hba":null}`, []string{`spec.hba: wrong type: got null, want array`}},
		{"spec", `{"server_version":11}`, []string{`spec.server_version: minimum: got 11, want 12`}},
		{"spec", `{"server_version":19}`, []string{`spec.server_version: maximum: got 19, want 18`}},
		{"spec", `{"server_version":"16"}`, []string{`spec.server_version: wrong type: got string, want integer`}},
		{"spec", `{"ident_maps":[{"map":"","system_user":"a","pg_user":"b"}]}`, []string{`spec.ident_maps[0].map: minLength: got 0, want 1`}},
		{"spec", `{"ident_maps":[{"map":"m","system_user":"a"}]}`, []string{`spec.ident_maps[0]: missing required key "pg_user"`}},
		{"spec", `{"ident_maps":[{"map":"m","system_user":"a","pg_user":"b","x":1}]}`, []string{`spec.ident_maps[0].x: unknown key "x"`}},
		{"spec", `{"colour":1}`, []string{`spec.colour: unknown key "colour"`}},
	},
	"kafka": {
		{"connection", `{"bootstrap":["10.0.0.5:9092"],"config_file":"/etc/kafka/server.properties","restart_command":["systemctl","restart","kafka"],"restart_timeout":"3m"}`, nil},
		{"connection", `{"bootstrap":["127.0.0.1:9092"],"brokers":[{"node_id":1,"config_file":"/a","restart_command":["x"]},{"node_id":2,"config_file":"/b"}],"probe_credentials_file":"p.pem"}`, nil},
		{"connection", `{}`, []string{`connection: missing required key "bootstrap"`}},
		{"connection", `{"bootstrap":[]}`, []string{`connection.bootstrap: minItems: got 0, want 1`}},
		{"connection", `{"bootstrap":"127.0.0.1:9092"}`, []string{`connection.bootstrap: wrong type: got string, want array`}},
		{"connection", `{"bootstrap":[9092]}`, []string{`connection.bootstrap[0]: wrong type: got number, want string`}},
		{"connection", `{"bootstrap":null}`, []string{`connection.bootstrap: wrong type: got null, want array`}},
		{"connection", `{"bootstrap":["h:1"],"restart_command":[]}`, []string{`connection.restart_command: minItems: got 0, want 1`}},
		{"connection", `{"bootstrap":["h:1"],"restart_timeout":"3 minutes"}`, []string{`connection.restart_timeout: does not match pattern "^[0-9]+(ms|s|m|h)$"`}},
		{"connection", `{"bootstrap":["h:1"],"restart_timeout":"90"}`, []string{`connection.restart_timeout: does not match pattern "^[0-9]+(ms|s|m|h)$"`}},
		{"connection", `{"bootstrap":["h:1"],"probe_credentials_file":""}`, []string{`connection.probe_credentials_file: minLength: got 0, want 1`}},
		{"connection", `{"bootstrap":["h:1"],"brokers":[]}`, []string{`connection.brokers: minItems: got 0, want 1`}},
		{"connection", `{"bootstrap":["h:1"],"brokers":[{"node_id":-1,"config_file":"/a"}]}`, []string{`connection.brokers[0].node_id: minimum: got -1, want 0`}},
		{"connection", `{"bootstrap":["h:1"],"brokers":[{"config_file":"/a"}]}`, []string{`connection.brokers[0]: missing required key "node_id"`}},
		{"connection", `{"bootstrap":["h:1"],"brokers":[{"node_id":1,"config_file":"/a","x":1}]}`, []string{`connection.brokers[0].x: unknown key "x"`}},
		{"connection", `{"bootstrap":["h:1"],"colour":1}`, []string{`connection.colour: unknown key "colour"`}},
		{"spec", `{}`, nil},
		{"spec", `{"listeners":[{"name":"SSL","address":"10.0.0.5:9093"},{"name":"CONTROLLER","address":"10.0.0.5:9094","controller":true}],"super_users":["ops-admin"],"inter_broker_listener":"SSL","store_dir":"/s"}`, nil},
		{"spec", `{"brokers":[{"node_id":1,"listeners":[{"name":"SSL","address":"a:1"}]}],"migration":{"phase":"add-tls"}}`, nil},
		{"spec", `{"migration":{"phase":"switch"}}`, nil},
		{"spec", `{"migration":{"phase":"tls-only"}}`, nil},
		{"spec", `{"migration":{"phase":"later"}}`, []string{`spec.migration.phase: value must be one of 'add-tls', 'switch', 'tls-only'`}},
		{"spec", `{"migration":{"phase":"switch","x":1}}`, []string{`spec.migration.x: unknown key "x"`}},
		{"spec", `{"listeners":[{"name":"1SSL","address":"a:1"}]}`, []string{`spec.listeners[0].name: does not match pattern "^[A-Za-z][A-Za-z0-9_]*$"`}},
		{"spec", `{"listeners":[{"name":"SS-L","address":"a:1"}]}`, []string{`spec.listeners[0].name: does not match pattern "^[A-Za-z][A-Za-z0-9_]*$"`}},
		{"spec", `{"listeners":[{"name":"SSL"}]}`, []string{`spec.listeners[0]: missing required key "address"`}},
		{"spec", `{"listeners":[{"name":"SSL","address":"a:1","controller":"yes"}]}`, []string{`spec.listeners[0].controller: wrong type: got string, want boolean`}},
		{"spec", `{"listeners":[{"name":"SSL","address":"a:1","port":1}]}`, []string{`spec.listeners[0].port: unknown key "port"`}},
		{"spec", `{"brokers":[]}`, []string{`spec.brokers: minItems: got 0, want 1`}},
		{"spec", `{"brokers":[{"node_id":1}]}`, []string{`spec.brokers[0]: missing required key "listeners"`}},
		{"spec", `{"brokers":[{"node_id":1,"listeners":[{"name":"bad name","address":"a:1"}]}]}`, []string{`spec.brokers[0].listeners[0].name: does not match pattern "^[A-Za-z][A-Za-z0-9_]*$"`}},
		{"spec", `{"super_users":["a;b"]}`, []string{`spec.super_users[0]: does not match pattern "^[^;,]+$"`}},
		{"spec", `{"super_users":["a,b"]}`, []string{`spec.super_users[0]: does not match pattern "^[^;,]+$"`}},
		{"spec", `{"super_users":[""]}`, []string{`spec.super_users[0]: does not match pattern "^[^;,]+$"`}},
		{"spec", `{"colour":1}`, []string{`spec.colour: unknown key "colour"`}},
	},
	"objectstore": {
		{"connection", `{"endpoint":"https://s3.internal:8443","http_endpoint":"http://s3.internal:8333","ca_file":"ca.pem","access_key_file":"k","secret_key_file":"s","data_dir":"/srv/seaweedfs","region":"us-east-1","access_key_env":"A","secret_key_env":"S"}`, nil},
		{"connection", `{}`, []string{`connection: missing required key "endpoint"`}},
		{"connection", `{"endpoint":"http://s3.internal:8333"}`, []string{`connection.endpoint: does not match pattern "^https://"`}},
		{"connection", `{"endpoint":"https://h","http_endpoint":"https://h"}`, []string{`connection.http_endpoint: does not match pattern "^http://"`}},
		{"connection", `{"endpoint":"https://h","ca_file":1}`, []string{`connection.ca_file: wrong type: got number, want string`}},
		{"connection", `{"endpoint":"https://h","secret_key":"x"}`, []string{`connection.secret_key: unknown key "secret_key"`}},
		{"connection", `{"endpoint":null}`, []string{`connection.endpoint: wrong type: got null, want string`}},
		{"spec", `{"bucket":"lake","sse":{"algorithm":"aws:kms","kms_key_id":"lake-sse"},"sensitive_prefixes":["pii/"],"sample":100,"envelope":{"kek":"vault:transit/lake-kek","prefix":"curated/"},"backup_dir":"/b"}`, nil},
		{"spec", `{"bucket":"lake","sse":{"algorithm":"AES256"}}`, nil},
		{"spec", `{}`, []string{`spec: missing required key "bucket"`}},
		{"spec", `{"bucket":"ab"}`, []string{`spec.bucket: minLength: got 2, want 3`}},
		{"spec", `{"bucket":"lake","sse":{"algorithm":"aws:kms:dsse"}}`, []string{`spec.sse.algorithm: value must be one of 'aws:kms', 'AES256'`}},
		{"spec", `{"bucket":"lake","sse":{"algorithm":"AES256","x":1}}`, []string{`spec.sse.x: unknown key "x"`}},
		{"spec", `{"bucket":"lake","sensitive_prefixes":["pii"]}`, []string{`spec.sensitive_prefixes[0]: does not match pattern "^[^*?]+/$"`}},
		{"spec", `{"bucket":"lake","sensitive_prefixes":["pii/*/"]}`, []string{`spec.sensitive_prefixes[0]: does not match pattern "^[^*?]+/$"`}},
		{"spec", `{"bucket":"lake","sample":-1}`, []string{`spec.sample: minimum: got -1, want 0`}},
		{"spec", `{"bucket":"lake","sample":1.5}`, []string{`spec.sample: wrong type: got number, want integer`}},
		{"spec", `{"bucket":"lake","envelope":{"prefix":"c/"}}`, []string{`spec.envelope: missing required key "kek"`}},
		{"spec", `{"bucket":"lake","envelope":{"kek":"k","x":1}}`, []string{`spec.envelope.x: unknown key "x"`}},
		{"spec", `{"bucket":"lake","envelope":null}`, []string{`spec.envelope: wrong type: got null, want object`}},
		{"spec", `{"bucket":"lake","colour":1}`, []string{`spec.colour: unknown key "colour"`}},
	},
	"vaultpki": {
		{"connection", `{"address":"https://127.0.0.1:8200","ca_file":"vault-ca.pem","token_file":"vault-token"}`, nil},
		{"connection", `{"address":"http://127.0.0.1:8200","allow_insecure":"lab","role_id_file":"r","secret_id_file":"s","role_id_env":"R","secret_id_env":"S","token_env":"T","approle_mount":"approle"}`, nil},
		{"connection", `{}`, []string{`connection: missing required key "address"`}},
		{"connection", `{"address":"127.0.0.1:8200"}`, []string{`connection.address: does not match pattern "^https?://"`}},
		{"connection", `{"address":"https://h","allow_insecure":""}`, []string{`connection.allow_insecure: minLength: got 0, want 1`}},
		{"connection", `{"address":"https://h","token":"x"}`, []string{`connection.token: unknown key "token"`}},
		{"connection", `{"address":"https://h","token_file":["a"]}`, []string{`connection.token_file: wrong type: got array, want string`}},
		{"spec", `{}`, nil},
		{"spec", `{"audit":{"file":"/var/log/vault/audit.log"},"transit":{"keys":["lake-kek"]},"pki":{"client_names":["harden-admin"]}}`, nil},
		{"spec", `{"pki":{"root_mount":"pki","intermediate_mount":"pki_int","root_common_name":"r","intermediate_common_name":"i","root_ttl":"87600h","intermediate_ttl":"43800h","url_base":"https://v:8200","server_role":"server","client_role":"client","allow_wildcards":false,"external_intermediate":{"csr_file":"a.csr","certificate_file":"a.pem"}},"transit":{"mount":"transit","keys":["a","b_c-1"]},"audit":{"file":"/f","path":"harden-file"}}`, nil},
		{"spec", `{"pki":{"root_ttl":"10y"}}`, []string{`spec.pki.root_ttl: does not match pattern "^[0-9]+h$"`}},
		{"spec", `{"pki":{"intermediate_ttl":"43800"}}`, []string{`spec.pki.intermediate_ttl: does not match pattern "^[0-9]+h$"`}},
		{"spec", `{"pki":{"url_base":"v:8200"}}`, []string{`spec.pki.url_base: does not match pattern "^https?://"`}},
		{"spec", `{"pki":{"allow_wildcards":"no"}}`, []string{`spec.pki.allow_wildcards: wrong type: got string, want boolean`}},
		{"spec", `{"pki":{"external_intermediate":{"csr_file":"a.csr"}}}`, []string{`spec.pki.external_intermediate: missing required key "certificate_file"`}},
		{"spec", `{"pki":{"colour":1}}`, []string{`spec.pki.colour: unknown key "colour"`}},
		{"spec", `{"pki":null}`, []string{`spec.pki: wrong type: got null, want object`}},
		{"spec", `{"transit":{"keys":["a b"]}}`, []string{`spec.transit.keys[0]: does not match pattern "^[A-Za-z0-9_-]+$"`}},
		{"spec", `{"transit":{"keys":"a"}}`, []string{`spec.transit.keys: wrong type: got string, want array`}},
		{"spec", `{"audit":{}}`, []string{`spec.audit: missing required key "file"`}},
		{"spec", `{"audit":{"file":"/f","x":1}}`, []string{`spec.audit.x: unknown key "x"`}},
		{"spec", `{"colour":1}`, []string{`spec.colour: unknown key "colour"`}},
	},
}

// TestPluginSchemaVerdicts validates the table against each plugin's served
// schema (its testdata/schema.golden.json, which the plugin's own
// TestSchemaGolden keeps equal to what it serves).
func TestPluginSchemaVerdicts(t *testing.T) {
	record := os.Getenv("HARDEN_RECORD_VERDICTS") != ""
	for plugin, cases := range pluginVerdicts {
		golden := filepath.Join("..", "..", "..", "plugins", plugin, "testdata", "schema.golden.json")
		raw, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		var blocks map[string]json.RawMessage
		if err := json.Unmarshal(raw, &blocks); err != nil {
			t.Fatalf("%s: %v", golden, err)
		}
		schemas := map[string]*Schema{}
		for _, block := range []string{"connection", "spec"} {
			if schemas[block], err = Compile(plugin+" "+block+" schema", blocks[block]); err != nil {
				t.Fatal(err)
			}
		}
		for i, tc := range cases {
			var got []string
			for _, d := range schemas[tc.block].Validate([]byte(tc.doc), Path{tc.block}) {
				got = append(got, d.Error())
			}
			if record {
				t.Logf("%s %d %s %q", plugin, i, tc.block, got)
				continue
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%s %s %s:\n got %q\nwant %q", plugin, tc.block, tc.doc, got, tc.want)
			}
		}
	}
}
