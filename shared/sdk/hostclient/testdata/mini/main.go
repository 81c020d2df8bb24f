// Command mini is the smallest plugin, used by the sdk's own tests.
package main

import (
	"context"

	"github.com/harden-dev/harden/shared/sdk"
)

type mini struct{}

func (mini) Metadata(_ context.Context, _ sdk.MetadataRequest, r *sdk.MetadataResponse) {
	r.Name, r.Version = "mini", "1.0.0"
}

func (mini) Schema(_ context.Context, _ sdk.SchemaRequest, r *sdk.SchemaResponse) {}

func main() { sdk.Serve(mini{}) }
