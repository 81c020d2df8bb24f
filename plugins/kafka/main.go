package main

import "github.com/harden-dev/harden/shared/sdk"

const version = "0.1.0"

func main() { sdk.Serve(kafka{}) }
