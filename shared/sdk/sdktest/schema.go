package sdktest

import (
	"bytes"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileLikeHost compiles a plugin's schema with the compiler and draft the
// host uses (santhosh-tekuri/jsonschema, Draft 2020-12), so a schema the
// plugin's own admission accepts but the host would reject fails here.
func compileLikeHost(name string, doc []byte) error {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil
	}
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("%s: not JSON: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("harden:///schema.json", parsed); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := c.Compile("harden:///schema.json"); err != nil {
		return fmt.Errorf("%s is not a valid JSON Schema: %w", name, err)
	}
	return nil
}
