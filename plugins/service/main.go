package main

import "github.com/harden-dev/harden/shared/sdk"

func main() { sdk.Serve(service{}) }
