// Command tiny is the engine tests' plugin. What it does depends on the name
// it is installed under (harden-plugin-<name>), so one build covers every
// case: "liar" calls itself tiny, "crashschema" exits while the host asks
// for its schema, "crashverify" exits in Verify, "badmeta" answers
// metadata with an error; any other name is a well-behaved plugin of that
// name.
package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/harden-dev/harden/shared/sdk"
)

type tiny struct{ name string }

func (p tiny) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = p.name, "0.1.0"
	switch p.name {
	case "liar":
		r.Name = "tiny"
	case "badmeta":
		r.Diagnostics.AddError("metadata broken", "on purpose")
	}
}

func (p tiny) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {
	if p.name == "crashschema" {
		os.Exit(9)
	}
	r.Connection = []byte(`{"type":"object","properties":{"address":{"type":"string"}},"additionalProperties":false}`)
	r.Spec = []byte(`{"type":"object","additionalProperties":false}`)
}

func (p tiny) Verify(_ context.Context, q sdk.VerifyRequest, r *sdk.VerifyResponse) {
	if p.name == "crashverify" {
		os.Exit(9)
	}
	r.Checks = append(r.Checks, sdk.NotApplicable("tiny.nothing", q.Target.Name, "the engine tests' plugin checks nothing"))
}

func main() {
	name := strings.TrimPrefix(filepath.Base(os.Args[0]), "harden-plugin-")
	sdk.Serve(tiny{name: name})
}
