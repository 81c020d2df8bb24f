// Package testenv starts REAL servers on 127.0.0.1 for tests and the demo:
// PostgreSQL now; Apache Kafka (KRaft), Vault and SeaweedFS S3 plug into the
// same Service interface. Every server gets random free ports, a private
// temporary directory and a throwaway CA, starts unhardened (the "before"
// state harden is meant to fix) and is stopped and removed afterwards.
//
// Tests call the helpers (Postgres(t)); under CI=true a server that cannot be
// started fails the test instead of skipping it. The testenv command (cmd/
// testenv) runs `up` for the demo and writes env.json and policy.yaml.
package testenv
