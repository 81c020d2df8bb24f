package main

import "github.com/harden-dev/harden/shared/sdk"

// version of the plugin, reported in metadata.
const version = "0.1.0"

func main() { sdk.Serve(postgres{}) }
