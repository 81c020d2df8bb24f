// Package policy loads harden's declarative policy file strictly: YAML with
// positions, validated against the policy's JSON Schema (2020-12) and then
// against each plugin's connection and spec schemas, so every problem is
// reported as file:line:column with the attribute path. Secrets appear only
// by reference (*_env, *_file) and are resolved at run time, never printed.
package policy
